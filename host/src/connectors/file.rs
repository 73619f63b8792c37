//! The file source (UTF-8 lines) and the file sink (part files, committed at the end).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use cairn_sdk::{Emitter, PackedBatch};

use super::{ConnectorError, Poll, Sink, Source};
use crate::runtime::batch_full;

/// Reads a text file line by line; each line (without its line break) is one keyless record.
pub struct FileSource {
    path: PathBuf,
    reader: BufReader<File>,
    line: Vec<u8>,
    line_number: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self, ConnectorError> {
        let file = File::open(path).map_err(|source| ConnectorError::Io {
            action: "cannot open input",
            path: path.to_owned(),
            cause: source,
        })?;
        Ok(FileSource {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 20, file),
            line: Vec::new(),
            line_number: 0,
        })
    }
}

impl Source for FileSource {
    fn poll(&mut self, out: &mut Emitter) -> Result<Poll, ConnectorError> {
        while !batch_full(out) {
            self.line.clear();
            let read = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|source| ConnectorError::Io {
                    action: "cannot read input",
                    path: self.path.clone(),
                    cause: source,
                })?;
            if read == 0 {
                return Ok(Poll::End);
            }
            self.line_number += 1;
            let mut line = self.line.as_slice();
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            if std::str::from_utf8(line).is_err() {
                return Err(ConnectorError::NotUtf8 {
                    path: self.path.clone(),
                    line: self.line_number,
                });
            }
            out.emit(line);
        }
        Ok(Poll::Ready)
    }
}

/// Writes each record's value and a line break to a part file of its own per subtask.
/// The file is hidden (`.part-<uid>-<subtask>-<n>.inprogress`) while written and renamed to
/// `part-<uid>-<subtask>-<n>` when the job commits, so readers never see partial output.
pub struct FileSink {
    writer: BufWriter<File>,
    in_progress: PathBuf,
    committed: PathBuf,
}

impl FileSink {
    pub fn open(dir: &Path, uid: &str, subtask: u32) -> Result<Self, ConnectorError> {
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| ConnectorError::Io {
                action,
                path,
                cause: source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io("cannot create output folder", dir))?;
        // Never overwrite committed output: continue after the highest part number present.
        let prefix = format!("part-{uid}-{subtask}-");
        let mut next = 0;
        for entry in std::fs::read_dir(dir).map_err(io("cannot list output folder", dir))? {
            let entry = entry.map_err(io("cannot list output folder", dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let name = name.trim_start_matches('.').trim_end_matches(".inprogress");
            if let Some(n) = name
                .strip_prefix(&prefix)
                .and_then(|n| n.parse::<u64>().ok())
            {
                next = next.max(n + 1);
            }
        }
        let committed = dir.join(format!("{prefix}{next}"));
        let in_progress = dir.join(format!(".{prefix}{next}.inprogress"));
        let file = File::create(&in_progress).map_err(io("cannot create", &in_progress))?;
        Ok(FileSink {
            writer: BufWriter::with_capacity(1 << 18, file),
            in_progress,
            committed,
        })
    }

    fn io_error(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> ConnectorError {
        let path = self.in_progress.clone();
        move |source| ConnectorError::Io {
            action,
            path,
            cause: source,
        }
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &PackedBatch) -> Result<(), ConnectorError> {
        let records = batch
            .records(0)
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?;
        for record in records {
            self.writer
                .write_all(record.value())
                .and_then(|()| self.writer.write_all(b"\n"))
                .map_err(self.io_error("cannot write"))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        self.writer.flush().map_err(self.io_error("cannot write"))?;
        self.writer
            .get_ref()
            .sync_all()
            .map_err(self.io_error("cannot sync"))
    }

    fn commit(&mut self) -> Result<(), ConnectorError> {
        std::fs::rename(&self.in_progress, &self.committed).map_err(self.io_error("cannot commit"))
    }

    fn abort(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.in_progress) {
            tracing::warn!("cannot remove {}: {e}", self.in_progress.display());
        }
    }
}
