//! The loop each subtask runs, by role.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_sdk::{Context, Emitter, PackedBatch};
use crossbeam_channel::Select;

use super::output::Output;
use super::{InputChannels, Message, TaskError, TaskId, TaskMetrics};
use crate::connectors::{Poll, Sink};
use crate::graph::Role;
use crate::operator::OperatorFactory;

/// How a subtask ended its input.
pub(crate) enum Ended {
    Done,
    /// A sink whose output waits for the job to finish before it is committed.
    SinkToCommit(Box<dyn Sink>),
}

/// Everything one subtask owns.
pub(crate) struct Task {
    pub(crate) job_id: String,
    pub(crate) id: TaskId,
    pub(crate) role: Role,
    pub(crate) inputs: Inputs,
    pub(crate) output: Output,
    pub(crate) metrics: Arc<TaskMetrics>,
    pub(crate) operators: Arc<dyn OperatorFactory>,
    pub(crate) cancel: Arc<AtomicBool>,
}

impl Task {
    /// Runs the subtask to its end; a panic in host code becomes a task failure.
    pub(crate) fn run(self) -> Result<Ended, TaskError> {
        catch_unwind(AssertUnwindSafe(|| self.run_role())).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(TaskError::Panic(message))
        })
    }

    fn run_role(self) -> Result<Ended, TaskError> {
        let Task {
            job_id,
            id,
            role,
            mut inputs,
            mut output,
            metrics,
            operators,
            cancel,
        } = self;
        match role {
            Role::Source(spec) => {
                let mut source = spec.open(id.subtask, id.parallelism)?;
                let mut batch = Emitter::default();
                loop {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(TaskError::Canceled);
                    }
                    let poll = source.poll(&mut batch)?;
                    let records = batch.take();
                    metrics
                        .records_out
                        .fetch_add(records.len() as u64, Ordering::Relaxed);
                    output.emit(records)?;
                    match poll {
                        Poll::Ready => {}
                        Poll::Idle(wait) => {
                            output.flush()?;
                            std::thread::sleep(wait);
                        }
                        Poll::End => {
                            output.end()?;
                            return Ok(Ended::Done);
                        }
                    }
                }
            }
            Role::Operator { name, options } => {
                let ctx = Context {
                    job_id,
                    operator_uid: id.uid.clone(),
                    subtask: id.subtask,
                    parallelism: id.parallelism,
                    attempt: 0,
                    options,
                };
                let mut operator = operators.open(&ctx, &name)?;
                while let Some((input, batch)) = inputs.next(&mut output)? {
                    metrics
                        .records_in
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let out = operator.process(input, batch)?;
                    metrics
                        .records_out
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                    output.emit(out)?;
                }
                let out = operator.finish()?;
                metrics
                    .records_out
                    .fetch_add(out.len() as u64, Ordering::Relaxed);
                output.emit(out)?;
                output.end()?;
                Ok(Ended::Done)
            }
            Role::Sink(spec) => {
                let mut sink = spec.open(&id.uid, id.subtask)?;
                while let Some((_, batch)) = inputs.next(&mut output)? {
                    metrics
                        .records_in
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    sink.write(&batch)?;
                }
                sink.finish()?;
                Ok(Ended::SinkToCommit(sink))
            }
        }
    }
}

/// The input channels of a subtask that have not ended yet, each with its input index.
pub(crate) struct Inputs {
    live: InputChannels,
}

impl Inputs {
    pub(crate) fn new(channels: InputChannels) -> Self {
        Inputs { live: channels }
    }

    /// The next batch from any input, or `None` once every input has ended. Before blocking
    /// for input, partial output batches are flushed so that records never wait idle.
    pub(crate) fn next(
        &mut self,
        output: &mut Output,
    ) -> Result<Option<(u32, PackedBatch)>, TaskError> {
        while !self.live.is_empty() {
            let mut select = Select::new();
            for (_, rx) in &self.live {
                select.recv(rx);
            }
            let operation = match select.try_select() {
                Ok(operation) => operation,
                Err(_) => {
                    output.flush()?;
                    select.select()
                }
            };
            let index = operation.index();
            let received = operation.recv(&self.live[index].1);
            drop(select);
            match received {
                Ok(Message::Batch(batch)) => return Ok(Some((self.live[index].0, batch))),
                Ok(Message::End) => {
                    self.live.swap_remove(index);
                }
                // The upstream subtask stopped without ending its stream: it failed.
                Err(_) => return Err(TaskError::Canceled),
            }
        }
        Ok(None)
    }
}
