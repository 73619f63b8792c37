//! A subtask's inputs: its input channels and its control channel from the coordinator,
//! with checkpoint barrier alignment.
//!
//! EXACTLY_ONCE aligns: a channel that delivered barrier N is held (not read) until every
//! channel has delivered N, so the snapshot contains exactly the records before N.
//! AT_LEAST_ONCE does not hold channels: records after N on a fast channel are processed
//! before the snapshot and will be replayed after a restore, duplicated but never lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cairn_sdk::PackedBatch;
use crossbeam_channel::{Receiver, Select};

use super::output::Output;
use super::{Barrier, Control, InputChannels, Message, TaskError};
use crate::config::CheckpointingMode;

/// What a subtask does next.
pub(crate) enum Event {
    /// A batch from input `input`.
    Batch(u32, PackedBatch),
    /// Barrier `Barrier` arrived on every live channel, after this alignment time.
    Barrier(Barrier, Duration),
    /// A checkpoint completed.
    Complete(u64),
    /// Every input has ended (reported once).
    End,
}

struct Channel {
    input: u32,
    rx: Receiver<Message>,
    /// Exactly-once: holds a barrier; not read until alignment completes.
    blocked: bool,
}

pub(crate) struct Inputs {
    live: Vec<Channel>,
    control: Receiver<Control>,
    /// The coordinator has gone: after the final checkpoint, or because the job is failing.
    control_closed: bool,
    mode: CheckpointingMode,
    /// Exactly-once: the barrier being aligned and when its first copy arrived.
    aligning: Option<(Barrier, Instant)>,
    /// At-least-once: barriers seen on some channels: how many and since when.
    seen: BTreeMap<u64, (Barrier, usize, Instant)>,
    end_reported: bool,
}

impl Inputs {
    pub(crate) fn new(
        channels: InputChannels,
        mode: CheckpointingMode,
        control: Receiver<Control>,
    ) -> Self {
        Inputs {
            live: channels
                .into_iter()
                .map(|(input, rx)| Channel {
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

    /// The next event. Before blocking for input, partial output batches are flushed so
    /// that records never wait idle.
    pub(crate) fn next(&mut self, output: &mut Output) -> Result<Event, TaskError> {
        loop {
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
                    select.select()
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
                Ok(Message::Batch(batch)) => {
                    return Ok(Event::Batch(self.live[channel].input, batch));
                }
                Ok(Message::Barrier(barrier)) => self.on_barrier(channel, barrier),
                Ok(Message::End) => {
                    self.live.swap_remove(channel);
                }
                // The upstream subtask stopped without ending its stream: it failed.
                Err(_) => return Err(TaskError::Canceled),
            }
        }
    }

    fn on_barrier(&mut self, channel: usize, barrier: Barrier) {
        match self.mode {
            CheckpointingMode::ExactlyOnce => {
                self.aligning.get_or_insert((barrier, Instant::now()));
                self.live[channel].blocked = true;
            }
            CheckpointingMode::AtLeastOnce => {
                self.seen
                    .entry(barrier.checkpoint)
                    .or_insert((barrier, 0, Instant::now()))
                    .1 += 1;
            }
        }
    }

    /// A barrier that every live channel has delivered, if any; unblocks the channels.
    fn completed_barrier(&mut self) -> Option<Event> {
        match self.mode {
            CheckpointingMode::ExactlyOnce => {
                if self.aligning.is_none() || self.live.iter().any(|c| !c.blocked) {
                    return None;
                }
                let (barrier, since) = self.aligning.take()?;
                self.live.iter_mut().for_each(|c| c.blocked = false);
                Some(Event::Barrier(barrier, since.elapsed()))
            }
            CheckpointingMode::AtLeastOnce => {
                let (_, (_, count, _)) = self.seen.first_key_value()?;
                if *count < self.live.len() {
                    return None;
                }
                let (_, (barrier, _, since)) = self.seen.pop_first()?;
                Some(Event::Barrier(barrier, since.elapsed()))
            }
        }
    }
}
