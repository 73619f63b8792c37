//! A guest's stdout and stderr: every line it writes goes to the host's log, tagged with the
//! subtask that wrote it (Python's `print`, a C `printf`, a Rust panic message), and the
//! last lines of stderr are kept to explain a trap.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A line longer than this is logged in pieces, so a guest cannot grow the host's buffer
/// without bound by never writing a newline.
const MAX_LINE: usize = 16 * 1024;

/// How much of stderr's latest output is kept for a trap's message.
const KEPT_BYTES: usize = 16 * 1024;

/// Which of the guest's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One of a guest instance's output streams. Clones share the stream.
#[derive(Clone)]
pub(crate) struct GuestOutput(Arc<Mutex<Lines>>);

struct Lines {
    stream: Stream,
    /// The subtask, as log records name it.
    task: Arc<str>,
    /// The current line, not yet ended.
    partial: Vec<u8>,
    /// The latest complete lines, at most [`KEPT_BYTES`] of them (stderr only).
    kept: VecDeque<String>,
    kept_bytes: usize,
}

impl GuestOutput {
    pub(crate) fn new(stream: Stream, task: Arc<str>) -> Self {
        GuestOutput(Arc::new(Mutex::new(Lines {
            stream,
            task,
            partial: Vec::new(),
            kept: VecDeque::new(),
            kept_bytes: 0,
        })))
    }

    /// The latest lines written (stderr), the unfinished one included, without blank lines.
    pub(crate) fn recent_lines(&self) -> Vec<String> {
        let lines = self.lock();
        let mut recent: Vec<String> = lines.kept.iter().cloned().collect();
        recent.push(String::from_utf8_lossy(&lines.partial).into_owned());
        recent.retain(|line| !line.trim().is_empty());
        recent
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        // The lock is only held to append bytes; a poisoned one still holds valid lines.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_bytes(&self, mut bytes: &[u8]) {
        let mut lines = self.lock();
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            lines.partial.extend_from_slice(&bytes[..end]);
            lines.end_line();
            bytes = &bytes[end + 1..];
        }
        lines.partial.extend_from_slice(bytes);
        while lines.partial.len() >= MAX_LINE {
            let rest = lines.partial.split_off(MAX_LINE);
            lines.end_line();
            lines.partial = rest;
        }
    }
}

impl Lines {
    fn end_line(&mut self) {
        let line = String::from_utf8_lossy(&self.partial)
            .trim_end_matches('\r')
            .to_owned();
        self.partial.clear();
        let task = &*self.task;
        match self.stream {
            Stream::Stdout => tracing::info!(target: "guest", task, stream = "stdout", "{line}"),
            Stream::Stderr => {
                tracing::warn!(target: "guest", task, stream = "stderr", "{line}");
                self.kept_bytes += line.len();
                self.kept.push_back(line);
                while self.kept_bytes > KEPT_BYTES
                    && let Some(old) = self.kept.pop_front()
                {
                    self.kept_bytes -= old.len();
                }
            }
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Always ready: writing only appends to memory and logs.
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }
}

#[async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_the_latest_lines_and_the_unfinished_one() {
        let out = GuestOutput::new(Stream::Stderr, "t".into());
        out.write_bytes(b"first\r\n\nsec");
        out.write_bytes(b"ond\nthi");
        assert_eq!(out.recent_lines(), ["first", "second", "thi"]);
        for _ in 0..2 * KEPT_BYTES / 10 {
            out.write_bytes(b"123456789\n");
        }
        let kept = out.recent_lines();
        assert!(kept.iter().map(String::len).sum::<usize>() <= KEPT_BYTES);
        assert!(
            !kept.iter().any(|line| line == "first"),
            "the oldest lines go"
        );
        assert_eq!(kept.last().map(String::as_str), Some("123456789"));
    }

    #[test]
    fn a_line_without_end_is_cut_at_the_limit() {
        let out = GuestOutput::new(Stream::Stderr, "t".into());
        out.write_bytes(&vec![b'x'; MAX_LINE + 5]);
        let lines = out.recent_lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[1], "xxxxx");
    }
}
