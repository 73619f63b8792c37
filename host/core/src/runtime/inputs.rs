//! A subtask's inputs: its input channels and its control channel from the coordinator,
//! with checkpoint barrier alignment.
//!
//! EXACTLY_ONCE aligns: a channel that delivered barrier N is held (not read) until every
//! channel has delivered N, so the snapshot contains exactly the records before N.
//! AT_LEAST_ONCE does not hold channels: records after N on a fast channel are processed
//! before the snapshot and will be replayed after a restore, duplicated but never lost.
//! A code swap's barrier aligns in both modes.
//!
//! Watermarks and watermark statuses are not aligned: they combine into the subtask's input
//! watermark ([`WatermarkValve`]) as they arrive. A channel held at a barrier keeps its
//! watermark in the minimum, so nothing after a barrier moves event time before the
//! snapshot.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use cairn_wire::PackedBatch;
use crossbeam_channel::{Receiver, Select};

use super::output::Output;
use super::valve::{Change, NO_WATERMARK, WatermarkStatus, WatermarkValve};
use super::{Barrier, Control, InputChannels, Message, TaskError};
use crate::config::CheckpointingMode;

/// What a subtask does next.
pub(crate) enum Event {
    /// A batch from input `input`, with its records' key groups on a by-key input.
    Batch(u32, PackedBatch, Vec<u16>),
    /// Barrier `Barrier` arrived on every live channel, after this alignment time.
    Barrier(Barrier, Duration),
    /// A checkpoint completed.
    Complete(u64),
    /// The input watermark rose to this.
    Watermark(i64),
    /// Every input turned idle, or one turned active again.
    Status(WatermarkStatus),
    /// The deadline the caller gave passed before anything arrived.
    Tick,
    /// Every input has ended (reported once).
    End,
}

struct Channel {
    /// Which of the subtask's channels this is (indices in `live` shift as channels end).
    id: usize,
    input: u32,
    rx: Receiver<Message>,
    /// Holds a barrier being aligned; not read until alignment completes.
    blocked: bool,
}

pub(crate) struct Inputs {
    live: Vec<Channel>,
    control: Receiver<Control>,
    /// The coordinator has gone: after the final checkpoint, or because the job is failing.
    control_closed: bool,
    mode: CheckpointingMode,
    /// The barrier being aligned and when its first copy arrived.
    aligning: Option<(Barrier, Instant)>,
    /// At-least-once: barriers some channels delivered, which ones, and since when.
    seen: BTreeMap<u64, (Barrier, Vec<usize>, Instant)>,
    end_reported: bool,
    /// The input watermark, over channels by `id`.
    valve: WatermarkValve,
    /// Watermark changes not yet returned (one message may make two).
    changes: VecDeque<Change>,
}

impl Inputs {
    pub(crate) fn new(
        channels: InputChannels,
        mode: CheckpointingMode,
        control: Receiver<Control>,
    ) -> Self {
        Inputs {
            valve: WatermarkValve::new(channels.len(), NO_WATERMARK),
            changes: VecDeque::new(),
            live: channels
                .into_iter()
                .enumerate()
                .map(|(id, (input, rx))| Channel {
                    id,
                    input,
                    rx,
                    blocked: false,
                })
                .collect(),
            control,
            control_closed: false,
            mode,
            aligning: None,
            seen: BTreeMap::new(),
            end_reported: false,
        }
    }

    /// The control channel, for sources (which have no inputs).
    pub(crate) fn control(&self) -> &Receiver<Control> {
        &self.control
    }

    /// The next event; [`Event::Tick`] when nothing arrived by `deadline`. Before blocking
    /// for input, partial output batches are flushed so that records never wait idle.
    pub(crate) fn next(
        &mut self,
        output: &mut Output,
        deadline: Option<Instant>,
    ) -> Result<Event, TaskError> {
        loop {
            if let Some(change) = self.changes.pop_front() {
                return Ok(match change {
                    Change::Watermark(watermark) => Event::Watermark(watermark),
                    Change::Status(status) => Event::Status(status),
                });
            }
            if let Some(event) = self.completed_barrier() {
                return Ok(event);
            }
            if self.live.is_empty() && !self.end_reported {
                self.end_reported = true;
                return Ok(Event::End);
            }
            let readable: Vec<usize> = (0..self.live.len())
                .filter(|&i| !self.live[i].blocked)
                .collect();
            if readable.is_empty() && self.control_closed {
                // Nothing can arrive any more.
                return Err(TaskError::Canceled);
            }
            let mut select = Select::new();
            for &i in &readable {
                select.recv(&self.live[i].rx);
            }
            let control_index = if self.control_closed {
                usize::MAX
            } else {
                select.recv(&self.control)
            };
            let operation = match select.try_select() {
                Ok(operation) => operation,
                Err(_) => {
                    output.flush()?;
                    match deadline {
                        None => select.select(),
                        Some(deadline) => match select.select_deadline(deadline) {
                            Ok(operation) => operation,
                            Err(_) => return Ok(Event::Tick),
                        },
                    }
                }
            };
            let index = operation.index();
            if index == control_index {
                match operation.recv(&self.control) {
                    Ok(Control::Complete(checkpoint)) => return Ok(Event::Complete(checkpoint)),
                    // Sources' and swapping operators' business, not read here.
                    Ok(Control::Trigger(_) | Control::SwapDecision { .. }) => continue,
                    // Gone after its last message: the inputs tell what happens next (the
                    // end of the stream, or a failed upstream).
                    Err(_) => {
                        self.control_closed = true;
                        continue;
                    }
                }
            }
            let channel = readable[index];
            let received = operation.recv(&self.live[channel].rx);
            drop(select);
            match received {
                Ok(Message::Batch(batch, key_groups)) => {
                    return Ok(Event::Batch(self.live[channel].input, batch, key_groups));
                }
                Ok(Message::Barrier(barrier)) => self.on_barrier(channel, barrier),
                Ok(Message::Watermark(watermark)) => {
                    let id = self.live[channel].id;
                    self.changes.extend(self.valve.on_watermark(id, watermark));
                }
                Ok(Message::Status(status)) => {
                    let id = self.live[channel].id;
                    self.changes.extend(self.valve.on_status(id, status));
                }
                Ok(Message::End) => {
                    self.live.swap_remove(channel);
                }
                // The upstream subtask stopped without ending its stream: it failed.
                Err(_) => return Err(TaskError::Canceled),
            }
        }
    }

    fn on_barrier(&mut self, channel: usize, barrier: Barrier) {
        // A swap barrier aligns in either mode: new code downstream must see only records
        // that new code upstream emitted.
        if self.mode == CheckpointingMode::ExactlyOnce || barrier.swap.is_some() {
            self.aligning.get_or_insert((barrier, Instant::now()));
            self.live[channel].blocked = true;
        } else {
            let id = self.live[channel].id;
            self.seen
                .entry(barrier.checkpoint)
                .or_insert_with(|| (barrier, Vec::new(), Instant::now()))
                .1
                .push(id);
        }
    }

    /// A barrier that every live channel has delivered, if any; unblocks the channels. A
    /// channel that ended after delivering it no longer counts either way.
    fn completed_barrier(&mut self) -> Option<Event> {
        // Counted barriers first: an aligned one behind them cannot be complete before them.
        if let Some((_, (_, delivered, _))) = self.seen.first_key_value()
            && self.live.iter().all(|c| delivered.contains(&c.id))
        {
            let (_, (barrier, _, since)) = self.seen.pop_first()?;
            return Some(Event::Barrier(barrier, since.elapsed()));
        }
        if self.aligning.is_some() && self.live.iter().all(|c| c.blocked) {
            let (barrier, since) = self.aligning.take()?;
            self.live.iter_mut().for_each(|c| c.blocked = false);
            return Some(Event::Barrier(barrier, since.elapsed()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use cairn_wire::Emitter;
    use crossbeam_channel::{Sender, unbounded};

    use super::super::CodeSwap;
    use super::*;
    use std::sync::Arc;

    fn barrier(checkpoint: u64) -> Barrier {
        Barrier {
            checkpoint,
            folder: None,
            ends_stream: false,
            drain: false,
            swap: None,
        }
    }

    fn batch(value: &str) -> Message {
        let mut out = Emitter::default();
        out.emit(value);
        Message::Batch(out.take(), Vec::new())
    }

    /// Two input channels, A and B, and the subtask's inputs.
    fn inputs(mode: CheckpointingMode) -> (Sender<Message>, Sender<Message>, Inputs) {
        let (a, a_rx) = unbounded();
        let (b, b_rx) = unbounded();
        let (_, control) = unbounded();
        let inputs = Inputs::new(vec![(0, a_rx), (0, b_rx)], mode, control);
        (a, b, inputs)
    }

    /// What the subtask sees next, as text: `b:<value>`, `barrier <n>`, or `end`.
    fn next(inputs: &mut Inputs) -> String {
        match inputs
            .next(&mut Output::new(Vec::new(), Arc::default()), None)
            .unwrap()
        {
            Event::Batch(_, batch, _) => {
                let record = batch.records(0).unwrap().next().unwrap();
                format!("b:{}", record.value_str().unwrap())
            }
            Event::Barrier(barrier, _) => format!("barrier {}", barrier.checkpoint),
            Event::Complete(n) => format!("complete {n}"),
            Event::Watermark(w) => format!("watermark {w}"),
            Event::Status(status) => format!("{status:?}"),
            Event::Tick => "tick".into(),
            Event::End => "end".into(),
        }
    }

    #[test]
    fn watermarks_combine_and_a_channel_held_at_a_barrier_holds_event_time() {
        let (a, b, mut inputs) = inputs(CheckpointingMode::ExactlyOnce);
        a.send(Message::Watermark(10)).unwrap();
        b.send(Message::Watermark(20)).unwrap();
        assert_eq!(next(&mut inputs), "watermark 10");
        // A is held at barrier 1: its watermark after the barrier is not read, so B's
        // cannot raise event time past A's last one before the snapshot.
        a.send(Message::Barrier(barrier(1))).unwrap();
        a.send(Message::Watermark(30)).unwrap();
        b.send(Message::Watermark(40)).unwrap();
        b.send(batch("b")).unwrap();
        assert_eq!(next(&mut inputs), "b:b");
        b.send(Message::Barrier(barrier(1))).unwrap();
        assert_eq!(next(&mut inputs), "barrier 1");
        assert_eq!(next(&mut inputs), "watermark 30");
        // An idle channel leaves event time to the other; all idle, the input is idle.
        a.send(Message::Status(WatermarkStatus::Idle)).unwrap();
        assert_eq!(next(&mut inputs), "watermark 40");
        b.send(Message::Status(WatermarkStatus::Idle)).unwrap();
        assert_eq!(next(&mut inputs), "Idle");
        a.send(Message::Watermark(50)).unwrap();
        assert_eq!(next(&mut inputs), "Active");
        assert_eq!(next(&mut inputs), "watermark 50");
    }

    #[test]
    fn a_channel_that_ends_after_a_barrier_still_waits_for_the_others() {
        for mode in [
            CheckpointingMode::AtLeastOnce,
            CheckpointingMode::ExactlyOnce,
        ] {
            let (a, b, mut inputs) = inputs(mode);
            a.send(Message::Barrier(barrier(7))).unwrap();
            a.send(Message::End).unwrap();
            drop(a);
            // B's records before its barrier belong to checkpoint 7 and come first.
            b.send(batch("before")).unwrap();
            assert_eq!(next(&mut inputs), "b:before", "{mode}");
            b.send(Message::Barrier(barrier(7))).unwrap();
            b.send(batch("after")).unwrap();
            b.send(Message::End).unwrap();
            assert_eq!(next(&mut inputs), "barrier 7", "{mode}");
            assert_eq!(next(&mut inputs), "b:after", "{mode}");
            assert_eq!(next(&mut inputs), "end", "{mode}");
        }
    }

    #[test]
    fn at_least_once_reads_past_a_barrier_but_a_swap_barrier_aligns() {
        let (a, b, mut inputs) = inputs(CheckpointingMode::AtLeastOnce);
        a.send(Message::Barrier(barrier(1))).unwrap();
        a.send(batch("a-after-1")).unwrap();
        assert_eq!(next(&mut inputs), "b:a-after-1");

        let swap = Barrier {
            swap: Some(Arc::new(CodeSwap {
                operators: Arc::new(NoOperators),
                graph: crate::graph::Graph {
                    name: "g".into(),
                    nodes: Vec::new(),
                    max_parallelism: 128,
                },
            })),
            ..barrier(2)
        };
        a.send(Message::Barrier(swap.clone())).unwrap();
        a.send(batch("a-after-2")).unwrap();
        b.send(Message::Barrier(barrier(1))).unwrap();
        b.send(batch("b-before-2")).unwrap();
        assert_eq!(next(&mut inputs), "barrier 1");
        // A is held at the swap barrier: B's record comes, A's does not.
        assert_eq!(next(&mut inputs), "b:b-before-2");
        b.send(Message::Barrier(swap)).unwrap();
        assert_eq!(next(&mut inputs), "barrier 2");
        assert_eq!(next(&mut inputs), "b:a-after-2");
    }

    struct NoOperators;

    impl crate::operator::OperatorFactory for NoOperators {
        fn open(
            &self,
            _ctx: &cairn_wire::Context,
            name: &str,
        ) -> Result<Box<dyn crate::operator::OperatorInstance>, crate::operator::OperatorError>
        {
            Err(crate::operator::OperatorError::Failed(format!("no {name}")))
        }
    }
}
