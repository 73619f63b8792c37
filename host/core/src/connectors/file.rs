//! The file source (UTF-8 lines, rewindable to a byte offset) and the exactly-once file sink
//! (part files, committed when the checkpoint covering them completes).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_wire::{Emitter, PackedBatch};
use serde::{Deserialize, Serialize};

use super::pace::Pace;
use super::{
    ConnectorError, Options, Poll, SinkConnector, SinkKind, SinkStart, SinkState, SinkWriter,
    SourceConnector, SourceKind, SourcePosition, SourceReader, Subtask, decode,
    describe_single_split, encode, restored_single_split, single_split,
};
use crate::batch::batch_full;

pub(super) const SOURCE: SourceKind = SourceKind {
    name: "file",
    options: &["path", "rate"],
    from_options: source_from_options,
    describe: |position| {
        describe_single_split("file", position, |offset: Offset| {
            format!("file offset {}", offset.offset)
        })
    },
};

pub(super) const SINK: SinkKind = SinkKind {
    name: "file",
    options: &["path"],
    from_options: sink_from_options,
    describe: |state| match FileSinkState::decode(state) {
        Ok(state) => format!(
            "{} pending part(s), next part {}",
            state.pending.len(),
            state.next_part
        ),
        Err(e) => e.to_string(),
    },
};

/// The file source of a node: `rate` lines per second (0: as fast as possible).
#[derive(Debug)]
struct FileInput {
    path: PathBuf,
    rate: u64,
}

fn source_from_options(options: &Options) -> Result<Arc<dyn SourceConnector>, ConnectorError> {
    let path = PathBuf::from(options.required("path")?);
    File::open(&path).map_err(|cause| ConnectorError::Io {
        action: "cannot open input",
        path: path.clone(),
        cause,
    })?;
    Ok(Arc::new(FileInput {
        path,
        rate: options.number("rate", 0)?,
    }))
}

/// The file source's position: the byte offset of the next line.
#[derive(Serialize, Deserialize)]
struct Offset {
    offset: u64,
}

impl SourceConnector for FileInput {
    /// One reader per file: lines have no order but the file's.
    fn max_parallelism(&self) -> Option<u32> {
        Some(1)
    }

    fn open(
        &self,
        subtask: Subtask,
        restored: Option<&SourcePosition>,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        let offset = match restored {
            Some(position) => restored_single_split::<Offset>("file", subtask, position)?.offset,
            None => 0,
        };
        Ok(Box::new(FileSource::open(&self.path, offset, self.rate)?))
    }
}

/// Reads a text file line by line; each line (without its line break) is one keyless record.
/// Its position is the byte offset of the next line.
struct FileSource {
    path: PathBuf,
    reader: BufReader<File>,
    line: Vec<u8>,
    offset: u64,
    pace: Pace,
}

impl FileSource {
    /// Opens `path` at byte `offset` (the start of a line), to read `rate` lines per second
    /// (0: as fast as it can).
    fn open(path: &Path, offset: u64, rate: u64) -> Result<Self, ConnectorError> {
        let io = |action| {
            move |source| ConnectorError::Io {
                action,
                path: path.to_owned(),
                cause: source,
            }
        };
        let mut file = File::open(path).map_err(io("cannot open input"))?;
        if offset > file.metadata().map_err(io("cannot read input"))?.len() {
            return Err(ConnectorError::Restore(format!(
                "{} is shorter than the checkpointed position {offset}: the input changed",
                path.display()
            )));
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(io("cannot seek in input"))?;
        Ok(FileSource {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 20, file),
            line: Vec::new(),
            offset,
            pace: Pace::new(rate as f64),
        })
    }
}

impl SourceReader for FileSource {
    fn poll(&mut self, out: &mut Emitter) -> Result<Poll, ConnectorError> {
        let limit = match self.pace.allowance() {
            Ok(limit) => limit,
            Err(wait) => return Ok(Poll::Idle(wait)),
        };
        let mut lines = 0;
        while lines < limit && !batch_full(out) {
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
                self.pace.emitted(lines);
                return Ok(Poll::End);
            }
            let mut line = self.line.as_slice();
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            if std::str::from_utf8(line).is_err() {
                return Err(ConnectorError::NotUtf8 {
                    path: self.path.clone(),
                    offset: self.offset,
                });
            }
            self.offset += read as u64;
            out.emit(line);
            lines += 1;
        }
        self.pace.emitted(lines);
        Ok(Poll::Ready)
    }

    fn position(&self) -> SourcePosition {
        single_split(
            0,
            &Offset {
                offset: self.offset,
            },
        )
    }
}

/// The file sink of a node: the folder it writes.
#[derive(Debug)]
struct FileOutput {
    dir: PathBuf,
}

fn sink_from_options(options: &Options) -> Result<Arc<dyn SinkConnector>, ConnectorError> {
    Ok(Arc::new(FileOutput {
        dir: PathBuf::from(options.required("path")?),
    }))
}

impl SinkConnector for FileOutput {
    fn open(
        &self,
        subtask: Subtask,
        start: SinkStart,
    ) -> Result<Box<dyn SinkWriter>, ConnectorError> {
        let restored = match start {
            SinkStart::Fresh => None,
            SinkStart::Restart => Some(vec![(subtask.index, FileSinkState::default())]),
            SinkStart::Restore(states) => Some(
                states
                    .iter()
                    .map(|(old, state)| Ok((*old, FileSinkState::decode(state)?)))
                    .collect::<Result<Vec<_>, ConnectorError>>()?,
            ),
        };
        Ok(Box::new(FileSink::open(
            &self.dir,
            subtask.uid,
            subtask.index,
            restored.as_deref(),
        )?))
    }

    fn check(&self, state: &SinkState, checkpoint: u64) -> Result<(), ConnectorError> {
        FileSinkState::decode(state)?
            .validate(checkpoint)
            .map_err(ConnectorError::Restore)
    }

    fn output_folder(&self) -> Option<&Path> {
        Some(&self.dir)
    }
}

/// A file sink subtask's output that waits for a checkpoint to complete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSinkState {
    pub pending: Vec<PendingPart>,
    /// The number of the next part file.
    pub next_part: u64,
}

/// A finished part file, committed when checkpoint `checkpoint` completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPart {
    pub checkpoint: u64,
    /// File names in the sink's folder.
    pub in_progress: String,
    pub committed: String,
}

/// The most part files one sink subtask numbers: far beyond any real job, and far from
/// overflowing the numbers after it.
const MAX_PART_NUMBER: u64 = 1 << 62;

impl FileSinkState {
    /// Reads the state from a checkpoint; empty state is a sink that had written nothing.
    pub fn decode(state: &SinkState) -> Result<Self, ConnectorError> {
        if state.data.is_empty() {
            return Ok(FileSinkState::default());
        }
        decode("file sink", &state.data, state.version, 1)
    }

    fn encode(&self) -> SinkState {
        SinkState {
            version: 1,
            data: encode(self),
        }
    }

    /// Checks a state read from checkpoint `checkpoint`'s metadata: every file name plain,
    /// every pending part due by that checkpoint, numbers in range.
    fn validate(&self, checkpoint: u64) -> Result<(), String> {
        if self.next_part > MAX_PART_NUMBER {
            return Err(format!(
                "next part number {} is out of range",
                self.next_part
            ));
        }
        for part in &self.pending {
            crate::names::file_name(&part.in_progress)?;
            crate::names::file_name(&part.committed)?;
            if part.checkpoint > checkpoint {
                return Err(format!(
                    "part '{}' is pending for checkpoint {}, after this checkpoint ({checkpoint})",
                    part.committed, part.checkpoint
                ));
            }
        }
        Ok(())
    }
}

/// Writes each record's value and a line break to part files of its own per subtask,
/// exactly once: a part is written hidden (`.part-<uid>-<subtask>-<n>.inprogress`), becomes
/// pending at a checkpoint barrier, and is renamed to `part-<uid>-<subtask>-<n>` when that
/// checkpoint completes. Readers never see partial or uncommitted output.
struct FileSink {
    dir: PathBuf,
    /// `part-<uid>-<subtask>-`
    prefix: String,
    /// The part being written, and its number.
    current: Option<(BufWriter<File>, u64)>,
    state: FileSinkState,
}

impl FileSink {
    /// Opens the sink subtask. Restoring, it first commits the parts pending in the states
    /// of the old subtasks it takes over, by their index (their checkpoint completed), and
    /// deletes those subtasks' in-progress parts of later, failed attempts.
    pub fn open(
        dir: &Path,
        uid: &str,
        subtask: u32,
        restored: Option<&[(u32, FileSinkState)]>,
    ) -> Result<Self, ConnectorError> {
        std::fs::create_dir_all(dir).map_err(io_error("cannot create output folder", dir))?;
        let mut sink = FileSink {
            dir: dir.to_owned(),
            prefix: part_prefix(uid, subtask),
            current: None,
            state: FileSinkState::default(),
        };
        let mut next_part = 0;
        for (old, state) in restored.unwrap_or_default() {
            // Names come from a checkpoint's metadata: rename nothing but the old subtask's
            // own parts, whatever the metadata says.
            let prefix = part_prefix(uid, *old);
            for part in &state.pending {
                check_own(&prefix, part)?;
            }
            for part in &state.pending {
                sink.commit_part(part)?;
            }
            for (name, _) in parts(dir, &prefix, true)? {
                let path = dir.join(&name);
                std::fs::remove_file(&path).map_err(io_error("cannot remove", &path))?;
            }
            if *old == subtask {
                next_part = state.next_part;
            }
        }
        // Never overwrite: continue after every part number present, committed or not.
        let highest = parts(dir, &sink.prefix, false)?
            .into_iter()
            .chain(parts(dir, &sink.prefix, true)?)
            .map(|(_, n)| n + 1)
            .max();
        sink.state.next_part = highest.unwrap_or(0).max(next_part);
        Ok(sink)
    }

    fn commit_part(&self, part: &PendingPart) -> Result<(), ConnectorError> {
        let from = self.dir.join(&part.in_progress);
        let to = self.dir.join(&part.committed);
        match std::fs::rename(&from, &to) {
            Ok(()) => Ok(()),
            // Committed before: a restore repeats the commits of its checkpoint.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ConnectorError::MissingPending {
                    path: from,
                    checkpoint: part.checkpoint,
                })
            }
            Err(e) => Err(io_error("cannot commit", &from)(e)),
        }
    }

    fn in_progress_name(&self, part: u64) -> String {
        in_progress_name(&self.prefix, part)
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>, ConnectorError> {
        if self.current.is_none() {
            let part = self.state.next_part;
            let path = self.dir.join(self.in_progress_name(part));
            let file = File::create(&path).map_err(io_error("cannot create", &path))?;
            self.state.next_part += 1;
            self.current = Some((BufWriter::with_capacity(1 << 18, file), part));
        }
        Ok(&mut self.current.as_mut().expect("opened above").0)
    }
}

/// `part-<uid>-<subtask>-`: the names of a sink subtask's part files start so.
fn part_prefix(uid: &str, subtask: u32) -> String {
    format!("part-{uid}-{subtask}-")
}

/// The hidden name of part `part` while it is written or pending.
fn in_progress_name(prefix: &str, part: u64) -> String {
    format!(".{prefix}{part}.inprogress")
}

/// The part files in `dir` named with `prefix`: `(file name, part number)`, in progress or
/// committed.
fn parts(
    dir: &Path,
    prefix: &str,
    in_progress: bool,
) -> Result<Vec<(String, u64)>, ConnectorError> {
    let mut parts = Vec::new();
    let listing = std::fs::read_dir(dir).map_err(io_error("cannot list output folder", dir))?;
    for entry in listing {
        let entry = entry.map_err(io_error("cannot list output folder", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let number = if in_progress {
            name.strip_prefix('.')
                .and_then(|n| n.strip_suffix(".inprogress"))
                .and_then(|n| n.strip_prefix(prefix))
        } else {
            name.strip_prefix(prefix)
        };
        if let Some(n) = number.and_then(|n| n.parse().ok()) {
            parts.push((name, n));
        }
    }
    Ok(parts)
}

/// Refuses a pending part that is not exactly `.<prefix><n>.inprogress` → `<prefix><n>`:
/// a restore renames only the parts of the subtasks it takes over.
fn check_own(prefix: &str, part: &PendingPart) -> Result<(), ConnectorError> {
    let number = part
        .committed
        .strip_prefix(prefix)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok());
    match number {
        Some(n) if part.committed == format!("{prefix}{n}") => {
            if part.in_progress == in_progress_name(prefix, n) {
                return Ok(());
            }
            Err(ConnectorError::ForeignPart {
                name: part.in_progress.clone(),
                expected: format!(".{prefix}"),
            })
        }
        _ => Err(ConnectorError::ForeignPart {
            name: part.committed.clone(),
            expected: prefix.to_owned(),
        }),
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ConnectorError {
    let path = path.to_owned();
    move |cause| ConnectorError::Io {
        action,
        path,
        cause,
    }
}

impl SinkWriter for FileSink {
    fn write(&mut self, batch: &PackedBatch) -> Result<(), ConnectorError> {
        let records = batch
            .records(0)
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?;
        let dir = self.dir.clone();
        let writer = self.writer()?;
        for record in records {
            writer
                .write_all(record.value())
                .and_then(|()| writer.write_all(b"\n"))
                .map_err(io_error("cannot write to", &dir))?;
        }
        Ok(())
    }

    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, ConnectorError> {
        if let Some((mut writer, part)) = self.current.take() {
            let path = self.dir.join(self.in_progress_name(part));
            writer.flush().map_err(io_error("cannot write", &path))?;
            writer
                .get_ref()
                .sync_all()
                .map_err(io_error("cannot sync", &path))?;
            self.state.pending.push(PendingPart {
                checkpoint,
                in_progress: self.in_progress_name(part),
                committed: format!("{}{part}", self.prefix),
            });
        }
        Ok(self.state.encode())
    }

    fn commit(&mut self, checkpoint: u64) -> Result<(), ConnectorError> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.state.pending)
            .into_iter()
            .partition(|p| p.checkpoint <= checkpoint);
        self.state.pending = later;
        due.iter().try_for_each(|part| self.commit_part(part))
    }

    fn abort(&mut self) {
        if let Some((_, part)) = self.current.take() {
            let path = self.dir.join(self.in_progress_name(part));
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cairn_wire::Emitter;

    use super::*;

    fn batch(lines: &[&str]) -> PackedBatch {
        let mut out = Emitter::default();
        lines.iter().for_each(|l| out.emit(l));
        out.take()
    }

    fn prepare(sink: &mut FileSink, checkpoint: u64) -> FileSinkState {
        FileSinkState::decode(&sink.prepare(checkpoint).unwrap()).unwrap()
    }

    fn visible(dir: &Path) -> Vec<(String, String)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .map(|n| {
                let text = std::fs::read_to_string(dir.join(&n)).unwrap();
                (n, text)
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn parts_become_visible_only_when_their_checkpoint_completes() {
        let dir = std::env::temp_dir().join(format!("cairn-file-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut sink = FileSink::open(&dir, "out", 0, None).unwrap();
        sink.write(&batch(&["a", "b"])).unwrap();
        let state1 = prepare(&mut sink, 1);
        assert_eq!(state1.pending.len(), 1);
        assert_eq!(state1.pending[0].checkpoint, 1);
        sink.write(&batch(&["c"])).unwrap();
        let state2 = prepare(&mut sink, 2);
        assert_eq!(state2.pending.len(), 2);
        assert!(
            visible(&dir).is_empty(),
            "nothing before a completed checkpoint"
        );
        sink.commit(1).unwrap();
        assert_eq!(
            visible(&dir),
            [("part-out-0-0".to_owned(), "a\nb\n".to_owned())]
        );

        // A crash now: checkpoint 2 completed but its commit never ran; data after it
        // sits in progress. Restoring from 2 commits its part and drops the rest.
        sink.write(&batch(&["lost"])).unwrap();
        prepare(&mut sink, 3);
        drop(sink);
        let mut restored = FileSink::open(&dir, "out", 0, Some(&[(0, state2.clone())])).unwrap();
        assert_eq!(
            visible(&dir),
            [
                ("part-out-0-0".to_owned(), "a\nb\n".to_owned()),
                ("part-out-0-1".to_owned(), "c\n".to_owned())
            ]
        );
        let hidden: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .collect();
        assert!(
            hidden.is_empty(),
            "in-progress parts of the failed attempt are gone"
        );
        restored.write(&batch(&["d"])).unwrap();
        prepare(&mut restored, 3);
        restored.commit(3).unwrap();
        assert_eq!(
            visible(&dir).last().unwrap(),
            &("part-out-0-2".to_owned(), "d\n".to_owned())
        );

        // Restoring the same state again is harmless: its commits are already done.
        drop(restored);
        FileSink::open(&dir, "out", 0, Some(&[(0, state2.clone())])).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rescaled_restore_commits_what_old_subtasks_prepared_once() {
        let dir = std::env::temp_dir().join(format!("cairn-file-rescale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut old: Vec<FileSink> = (0..3)
            .map(|i| FileSink::open(&dir, "out", i, None).unwrap())
            .collect();
        let states: Vec<(u32, FileSinkState)> = old
            .iter_mut()
            .enumerate()
            .map(|(i, sink)| {
                sink.write(&batch(&[&format!("from {i}")])).unwrap();
                (i as u32, prepare(sink, 1))
            })
            .collect();
        // Written after the checkpoint, then the process died: never committed.
        old[2].write(&batch(&["lost"])).unwrap();
        prepare(&mut old[2], 2);
        drop(old);
        // Parallelism 3 -> 2: subtask 0 takes over old 0 and 2, subtask 1 old 1.
        let mut zero = FileSink::open(
            &dir,
            "out",
            0,
            Some(&[states[0].clone(), states[2].clone()]),
        )
        .unwrap();
        FileSink::open(&dir, "out", 1, Some(&[states[1].clone()])).unwrap();
        let expected = |extra: &[(&str, &str)]| {
            let mut all: Vec<(String, String)> = [
                ("part-out-0-0", "from 0\n"),
                ("part-out-1-0", "from 1\n"),
                ("part-out-2-0", "from 2\n"),
            ]
            .iter()
            .chain(extra)
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
            all.sort();
            all
        };
        assert_eq!(visible(&dir), expected(&[]));
        assert!(
            !dir.join(".part-out-2-1.inprogress").exists(),
            "the old subtask's uncommitted part is gone"
        );
        zero.write(&batch(&["new"])).unwrap();
        prepare(&mut zero, 3);
        zero.commit(3).unwrap();
        assert_eq!(visible(&dir), expected(&[("part-out-0-1", "new\n")]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn restores_rename_only_their_own_parts() {
        let dir = std::env::temp_dir().join(format!("cairn-file-own-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let outside = dir.with_extension("precious");
        std::fs::write(&outside, "keep").unwrap();
        let part = |in_progress: &str, committed: &str| FileSinkState {
            pending: vec![PendingPart {
                checkpoint: 1,
                in_progress: in_progress.into(),
                committed: committed.into(),
            }],
            next_part: 1,
        };
        let escape = format!("../{}", outside.file_name().unwrap().to_str().unwrap());
        for state in [
            part(".part-out-0-0.inprogress", &escape),
            part(&escape, "part-out-0-0"),
            part(".part-out-0-0.inprogress", "part-out-0-1"),
            part(".part-out-1-0.inprogress", "part-out-1-0"),
            part(".part-out-0-0.inprogress", "part-out-0-00"),
            part(".part-out-0-0.inprogress", "part-out-0-+0"),
        ] {
            let err = FileSink::open(&dir, "out", 0, Some(&[(0, state)]))
                .err()
                .unwrap();
            assert!(matches!(err, ConnectorError::ForeignPart { .. }), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        std::fs::remove_file(&outside).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
