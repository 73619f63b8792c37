//! A subtask's output: batches routed to the downstream subtasks by each edge's
//! partitioning. Sends block while a channel is full, which is how backpressure travels.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cairn_wire::{Emitter, PackedBatch, Partitioning};
use crossbeam_channel::{Sender, TrySendError};

use super::metrics::clock_ns;
use cairn_wire::key_groups::{key_group, subtask_for_key_group};

use super::valve::{END_OF_TIME, NO_WATERMARK, WatermarkStatus};
use super::{Barrier, Message, TaskError, TaskMetrics};
use crate::batch::batch_full;

/// One output edge: the channels to every downstream subtask it reaches.
pub(crate) struct OutputEdge {
    pub(crate) partitioning: Partitioning,
    /// `Some(name)`: the edge carries side output `name`, not the subtask's records.
    side_output: Option<String>,
    /// For forward edges, the single channel to the same-numbered subtask.
    pub(crate) channels: Vec<Sender<Message>>,
    pub(crate) max_parallelism: u32,
    /// By-key only: a batch being filled per downstream subtask, and its key groups.
    pending: Vec<(Emitter, Vec<u16>)>,
    /// Rebalance only: the next channel in turn.
    next: usize,
}

impl OutputEdge {
    pub(crate) fn new(
        partitioning: Partitioning,
        side_output: Option<String>,
        channels: Vec<Sender<Message>>,
        max_parallelism: u32,
    ) -> Self {
        let pending = match partitioning {
            Partitioning::ByKey => channels.iter().map(|_| Default::default()).collect(),
            _ => Vec::new(),
        };
        OutputEdge {
            partitioning,
            side_output,
            channels,
            max_parallelism,
            pending,
            next: 0,
        }
    }

    /// Routes a batch; waits on full channels go into `metrics`.
    fn send(&mut self, batch: PackedBatch, metrics: &TaskMetrics) -> Result<(), TaskError> {
        match self.partitioning {
            Partitioning::Forward => send(
                &self.channels[0],
                Message::Batch(batch, Vec::new()),
                metrics,
            ),
            Partitioning::Rebalance => {
                let channel = &self.channels[self.next];
                self.next = (self.next + 1) % self.channels.len();
                send(channel, Message::Batch(batch, Vec::new()), metrics)
            }
            Partitioning::Broadcast => {
                for channel in &self.channels {
                    send(channel, Message::Batch(batch.clone(), Vec::new()), metrics)?;
                }
                Ok(())
            }
            Partitioning::ByKey => {
                let parallelism = self.channels.len() as u32;
                let records = batch
                    .records(0)
                    .map_err(|e| TaskError::MalformedBatch(e.to_string()))?;
                for record in records {
                    let group = key_group(record.key().unwrap_or_default(), self.max_parallelism);
                    let target =
                        subtask_for_key_group(group, self.max_parallelism, parallelism) as usize;
                    let (pending, groups) = &mut self.pending[target];
                    pending.push(&record);
                    // Below max-parallelism, which is at most 2^15.
                    groups.push(group as u16);
                    if batch_full(pending) {
                        let message = Message::Batch(pending.take(), std::mem::take(groups));
                        send(&self.channels[target], message, metrics)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self, metrics: &TaskMetrics) -> Result<(), TaskError> {
        for ((pending, groups), channel) in self.pending.iter_mut().zip(&self.channels) {
            if !pending.is_empty() {
                let message = Message::Batch(pending.take(), std::mem::take(groups));
                send(channel, message, metrics)?;
            }
        }
        Ok(())
    }

    /// Flushes, then sends `message` (a barrier or the end) to every channel.
    fn broadcast(
        &mut self,
        message: impl Fn() -> Message,
        metrics: &TaskMetrics,
    ) -> Result<(), TaskError> {
        self.flush(metrics)?;
        for channel in &self.channels {
            send(channel, message(), metrics)?;
        }
        Ok(())
    }
}

/// Sends, waiting while the channel is full (backpressure), which `metrics` records.
fn send(
    channel: &Sender<Message>,
    message: Message,
    metrics: &TaskMetrics,
) -> Result<(), TaskError> {
    // The receiver is gone only when its task has stopped: this job is failing or canceled.
    let message = match channel.try_send(message) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Disconnected(_)) => return Err(TaskError::Canceled),
        Err(TrySendError::Full(message)) => message,
    };
    let since = clock_ns();
    metrics.blocked_since_ns.store(since, Ordering::Relaxed);
    let sent = channel.send(message).map_err(|_| TaskError::Canceled);
    metrics.blocked_since_ns.store(0, Ordering::Relaxed);
    metrics
        .back_pressured_ns
        .fetch_add(clock_ns() - since, Ordering::Relaxed);
    sent
}

/// All output edges of a subtask.
pub(crate) struct Output {
    edges: Vec<OutputEdge>,
    metrics: Arc<TaskMetrics>,
    /// The last watermark sent: one sent is never sent again, nor a lower one.
    watermark: i64,
    /// The last one short of the end of event time: what a checkpoint holds (a drained
    /// savepoint resumes where event time was, not at its end).
    finite: i64,
    /// The last status sent.
    idle: bool,
}

impl Output {
    pub(crate) fn new(edges: Vec<OutputEdge>, metrics: Arc<TaskMetrics>) -> Self {
        Output {
            edges,
            metrics,
            watermark: NO_WATERMARK,
            finite: NO_WATERMARK,
            idle: false,
        }
    }

    /// Routes a batch of the subtask's records to every output edge that carries them.
    pub(crate) fn emit(&mut self, batch: PackedBatch) -> Result<(), TaskError> {
        self.route(None, batch)
    }

    /// Routes a batch emitted to side output `name` to the edges that carry it (none: it
    /// is dropped, as Flink drops a side output nobody reads).
    pub(crate) fn emit_side(&mut self, name: &str, batch: PackedBatch) -> Result<(), TaskError> {
        self.route(Some(name), batch)
    }

    fn route(&mut self, side_output: Option<&str>, batch: PackedBatch) -> Result<(), TaskError> {
        if batch.is_empty() {
            return Ok(());
        }
        let metrics = &*self.metrics;
        let mut edges = self
            .edges
            .iter_mut()
            .filter(|edge| edge.side_output.as_deref() == side_output)
            .peekable();
        while let Some(edge) = edges.next() {
            if edges.peek().is_some() {
                edge.send(batch.clone(), metrics)?;
            } else {
                return edge.send(batch, metrics);
            }
        }
        Ok(())
    }

    /// Sends partially filled batches on, before the subtask waits for input.
    pub(crate) fn flush(&mut self) -> Result<(), TaskError> {
        let metrics = &*self.metrics;
        self.edges
            .iter_mut()
            .try_for_each(|edge| edge.flush(metrics))
    }

    /// Flushes, then sends checkpoint barrier `barrier` to every downstream subtask: all
    /// records emitted before it belong to the checkpoint, none after it.
    pub(crate) fn barrier(&mut self, barrier: Barrier) -> Result<(), TaskError> {
        let metrics = &*self.metrics;
        self.edges
            .iter_mut()
            .try_for_each(|edge| edge.broadcast(|| Message::Barrier(barrier.clone()), metrics))
    }

    /// Flushes, then sends watermark `watermark` to every downstream subtask, if it is above
    /// the last one sent: records emitted before it precede it on every channel.
    pub(crate) fn watermark(&mut self, watermark: i64) -> Result<(), TaskError> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        if watermark != END_OF_TIME {
            self.finite = watermark;
        }
        self.metrics
            .output_watermark
            .store(watermark, Ordering::Relaxed);
        let metrics = &*self.metrics;
        self.edges
            .iter_mut()
            .try_for_each(|edge| edge.broadcast(|| Message::Watermark(watermark), metrics))
    }

    /// The watermark a checkpoint taken now holds: the last one sent short of the end of
    /// event time; `None` before the first.
    pub(crate) fn checkpointed_watermark(&self) -> Option<i64> {
        (self.finite != NO_WATERMARK).then_some(self.finite)
    }

    /// Tells every downstream subtask that this one turned idle or active, if that changed.
    pub(crate) fn status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        let idle = status == WatermarkStatus::Idle;
        if idle == self.idle {
            return Ok(());
        }
        self.idle = idle;
        let metrics = &*self.metrics;
        self.edges
            .iter_mut()
            .try_for_each(|edge| edge.broadcast(|| Message::Status(status), metrics))
    }

    /// Flushes, then tells every downstream subtask that this one has ended.
    pub(crate) fn end(&mut self) -> Result<(), TaskError> {
        let metrics = &*self.metrics;
        self.edges
            .iter_mut()
            .try_for_each(|edge| edge.broadcast(|| Message::End, metrics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watermark follows every record emitted before it on every channel (by-key
    /// records waiting in a partial batch are flushed first), and is sent once.
    #[test]
    fn a_watermark_follows_the_records_before_it() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..2).map(|_| crossbeam_channel::unbounded()).unzip();
        let mut output = Output::new(
            vec![OutputEdge::new(Partitioning::ByKey, None, txs, 128)],
            Arc::default(),
        );
        let mut batch = Emitter::default();
        for i in 0..20 {
            batch.emit_keyed(format!("k{i}"), "v");
        }
        output.emit(batch.take()).unwrap();
        output.watermark(5).unwrap();
        output.watermark(5).unwrap();
        output.watermark(3).unwrap();
        output.status(WatermarkStatus::Active).unwrap();
        output.status(WatermarkStatus::Idle).unwrap();
        for rx in rxs {
            let messages: Vec<Message> = rx.try_iter().collect();
            assert!(matches!(messages[0], Message::Batch(..)));
            assert!(matches!(messages[1], Message::Watermark(5)));
            assert!(matches!(
                messages[2],
                Message::Status(WatermarkStatus::Idle)
            ));
            assert_eq!(messages.len(), 3);
        }
    }

    #[test]
    fn by_key_sends_each_key_to_one_subtask() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| crossbeam_channel::unbounded()).unzip();
        let mut output = Output::new(
            vec![OutputEdge::new(Partitioning::ByKey, None, txs, 128)],
            Arc::default(),
        );
        let mut batch = Emitter::default();
        for i in 0..300 {
            batch.emit_keyed(format!("k{}", i % 10), i.to_string());
        }
        output.emit(batch.take()).unwrap();
        output.end().unwrap();
        let mut owner = std::collections::HashMap::new();
        let mut total = 0;
        for (subtask, rx) in rxs.iter().enumerate() {
            for message in rx.try_iter() {
                let Message::Batch(b, _) = message else {
                    continue;
                };
                for r in b.records(0).unwrap() {
                    total += 1;
                    let key = r.key_str().unwrap().to_owned();
                    assert_eq!(*owner.entry(key).or_insert(subtask), subtask);
                }
            }
        }
        assert_eq!(total, 300);
        assert_eq!(owner.len(), 10);
    }

    proptest::proptest! {
        /// Whatever the keys and parallelism, by-key delivers every record exactly once,
        /// to the subtask owning the key's group.
        #[test]
        fn by_key_delivers_each_record_once_to_its_owner(
            keys in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..8), 1..3000),
            parallelism in 1u32..9,
        ) {
            let (txs, rxs): (Vec<_>, Vec<_>) =
                (0..parallelism).map(|_| crossbeam_channel::unbounded()).unzip();
            let mut output = Output::new(
            vec![OutputEdge::new(Partitioning::ByKey, None, txs, 128)],
            Arc::default(),
        );
            let mut batch = Emitter::default();
            for (i, key) in keys.iter().enumerate() {
                batch.emit_keyed(key, i.to_le_bytes());
            }
            output.emit(batch.take()).unwrap();
            output.end().unwrap();
            let mut delivered = vec![0u32; keys.len()];
            for (subtask, rx) in rxs.iter().enumerate() {
                for message in rx.try_iter() {
                    let Message::Batch(b, _) = message else {
                    continue;
                };
                    for r in b.records(0).unwrap() {
                        let i = usize::from_le_bytes(r.value().try_into().unwrap());
                        delivered[i] += 1;
                        let owner = subtask_for_key_group(key_group(&keys[i], 128), 128, parallelism);
                        proptest::prop_assert_eq!(owner as usize, subtask);
                    }
                }
            }
            proptest::prop_assert!(delivered.iter().all(|&n| n == 1));
        }
    }

    #[test]
    fn broadcast_copies_every_batch_to_every_subtask() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| crossbeam_channel::unbounded()).unzip();
        let mut output = Output::new(
            vec![OutputEdge::new(Partitioning::Broadcast, None, txs, 128)],
            Arc::default(),
        );
        let mut b = Emitter::default();
        b.emit("x");
        b.emit("y");
        output.emit(b.take()).unwrap();
        output.end().unwrap();
        for rx in &rxs {
            let messages: Vec<_> = rx.try_iter().collect();
            assert_eq!(messages.len(), 2, "one batch and the end");
            let Message::Batch(batch, _) = &messages[0] else {
                panic!("batch first")
            };
            assert_eq!(batch.len(), 2);
            assert!(matches!(messages[1], Message::End));
        }
    }

    #[test]
    fn rebalance_takes_turns_and_forward_keeps_order() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..2).map(|_| crossbeam_channel::unbounded()).unzip();
        let mut output = Output::new(
            vec![OutputEdge::new(Partitioning::Rebalance, None, txs, 128)],
            Arc::default(),
        );
        for i in 0..4 {
            let mut b = Emitter::default();
            b.emit(format!("{i}"));
            output.emit(b.take()).unwrap();
        }
        let firsts: Vec<Vec<String>> = rxs
            .iter()
            .map(|rx| {
                rx.try_iter()
                    .filter_map(|m| match m {
                        Message::Batch(b, _) => Some(
                            b.records(0)
                                .unwrap()
                                .next()
                                .unwrap()
                                .value_str()
                                .unwrap()
                                .to_owned(),
                        ),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        assert_eq!(firsts, [vec!["0", "2"], vec!["1", "3"]]);
    }

    /// Records go to the edges of the subtask's records, side outputs to the edges naming
    /// them; watermarks and the end to every edge.
    #[test]
    fn side_outputs_go_only_to_the_edges_that_name_them() {
        let (main_tx, main_rx) = crossbeam_channel::unbounded();
        let (late_tx, late_rx) = crossbeam_channel::unbounded();
        let mut output = Output::new(
            vec![
                OutputEdge::new(Partitioning::Forward, None, vec![main_tx], 128),
                OutputEdge::new(
                    Partitioning::Forward,
                    Some("late".into()),
                    vec![late_tx],
                    128,
                ),
            ],
            Arc::default(),
        );
        let batch = |value: &str| {
            let mut b = Emitter::default();
            b.emit(value);
            b.take()
        };
        output.emit(batch("on time")).unwrap();
        output.emit_side("late", batch("late")).unwrap();
        output
            .emit_side("nobody reads this", batch("dropped"))
            .unwrap();
        output.watermark(7).unwrap();
        output.end().unwrap();
        let seen = |rx: &crossbeam_channel::Receiver<Message>| -> Vec<String> {
            rx.try_iter()
                .map(|m| match m {
                    Message::Batch(b, _) => {
                        let value = b.records(0).unwrap().next().unwrap().value_str().unwrap();
                        value.to_owned()
                    }
                    Message::Watermark(w) => format!("watermark {w}"),
                    Message::End => "end".into(),
                    _ => "other".into(),
                })
                .collect()
        };
        assert_eq!(seen(&main_rx), ["on time", "watermark 7", "end"]);
        assert_eq!(seen(&late_rx), ["late", "watermark 7", "end"]);
    }
}
