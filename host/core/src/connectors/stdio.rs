//! Standard input as a source and standard output as a sink.

use std::io::{BufRead, Write};

use std::sync::Arc;
use std::time::Duration;

use cairn_wire::{Emitter, PackedBatch};
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::{
    ConnectorError, Options, Poll, SinkConnector, SinkKind, SinkStart, SinkState, SinkWriter,
    SourceConnector, SourceKind, SourcePosition, SourceReader, Subtask, describe_single_split,
    restored_single_split, single_split,
};
use crate::batch::batch_full;

pub(super) const STDIN: SourceKind = SourceKind {
    name: "stdin",
    options: &[],
    from_options: |_: &Options| Ok(Arc::new(Stdin)),
    describe: |position| {
        describe_single_split("stdin", position, |read: Read| {
            format!("stdin, {} lines read (not replayable)", read.lines)
        })
    },
};

pub(super) const STDOUT: SinkKind = SinkKind {
    name: "stdout",
    options: &[],
    from_options: |_: &Options| Ok(Arc::new(Stdout)),
    describe: |_| "holds nothing back".to_owned(),
};

/// Standard input, configured.
#[derive(Debug)]
struct Stdin;

/// The lines standard input's reader had read at a checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct Read {
    lines: u64,
}

impl SourceConnector for Stdin {
    /// One process has one standard input.
    fn max_parallelism(&self) -> Option<u32> {
        Some(1)
    }

    fn open(
        &self,
        subtask: Subtask,
        restored: Option<&SourcePosition>,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        if let Some(position) = restored {
            let read: Read = restored_single_split("stdin", subtask, position)?;
            tracing::warn!(
                "standard input cannot be rewound: of the input before the checkpoint ({} \
                 lines) nothing is replayed, and what followed it is lost",
                read.lines
            );
        }
        Ok(Box::new(StdinSource::spawn()?))
    }
}

/// Lines of standard input, one keyless record each. Not replayable.
///
/// A reader thread feeds lines through a channel so that a batch holds whatever has arrived:
/// piped input fills whole batches, interactive input flows line by line.
struct StdinSource {
    lines: Receiver<Result<Vec<u8>, std::io::Error>>,
    read: u64,
}

impl StdinSource {
    fn spawn() -> Result<Self, ConnectorError> {
        let (tx, lines) = crossbeam_channel::bounded(4096);
        // Blocked in a read, this thread cannot be stopped; it ends with the input or
        // when the job (and so the receiver) is gone.
        std::thread::Builder::new()
            .name("cairn-stdin".into())
            .spawn(move || {
                let stdin = std::io::stdin();
                let mut stdin = stdin.lock();
                loop {
                    let mut line = Vec::new();
                    match stdin.read_until(b'\n', &mut line) {
                        Ok(0) => return,
                        Ok(_) => {
                            if tx.send(Ok(line)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            })
            .map_err(ConnectorError::Stdio)?;
        Ok(StdinSource { lines, read: 0 })
    }
}

impl SourceReader for StdinSource {
    fn poll(&mut self, out: &mut Emitter) -> Result<Poll, ConnectorError> {
        // Wait a little for the first line, so the task can notice cancellation; then take
        // only what is already there.
        let mut next = match self.lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => return Ok(Poll::Idle(Duration::ZERO)),
            Err(RecvTimeoutError::Disconnected) => None,
        };
        while let Some(line) = next {
            let line = line.map_err(ConnectorError::Stdio)?;
            self.read += 1;
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            out.emit(line.strip_suffix(b"\r").unwrap_or(line));
            if batch_full(out) {
                return Ok(Poll::Ready);
            }
            next = match self.lines.try_recv() {
                Ok(line) => Some(line),
                Err(TryRecvError::Empty) => return Ok(Poll::Ready),
                Err(TryRecvError::Disconnected) => None,
            };
        }
        Ok(Poll::End)
    }

    fn position(&self) -> SourcePosition {
        single_split(0, &Read { lines: self.read })
    }
}

/// Writes each record's value and a line break to standard output.
#[derive(Debug)]
struct Stdout;

impl SinkConnector for Stdout {
    fn open(&self, _: Subtask, _: SinkStart) -> Result<Box<dyn SinkWriter>, ConnectorError> {
        Ok(Box::new(Stdout))
    }
}

impl SinkWriter for Stdout {
    fn write(&mut self, batch: &PackedBatch) -> Result<(), ConnectorError> {
        let records = batch
            .records(0)
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?;
        let mut stdout = std::io::stdout().lock();
        for record in records {
            stdout
                .write_all(record.value())
                .and_then(|()| stdout.write_all(b"\n"))
                .map_err(ConnectorError::Stdio)?;
        }
        stdout.flush().map_err(ConnectorError::Stdio)
    }

    /// Standard output cannot hold anything back: records are visible once written.
    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, ConnectorError> {
        std::io::stdout().flush().map_err(ConnectorError::Stdio)?;
        Ok(SinkState::empty())
    }

    fn commit(&mut self, _checkpoint: u64) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn abort(&mut self) {}
}
