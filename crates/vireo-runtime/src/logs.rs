//! Captures a guest's stdout and stderr per invocation as timestamped lines, bounded in size.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use vireo_core::LogStream;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// One complete line a guest wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedLine {
    pub at_us: i64,
    pub stream: LogStream,
    pub line: String,
}

/// The shared buffer of one invocation; `stdout()`/`stderr()` hand out the guest-facing ends.
#[derive(Clone)]
pub struct LogCapture {
    stream: LogStream,
    state: Arc<Mutex<CaptureState>>,
}

struct CaptureState {
    lines: Vec<CapturedLine>,
    partial: [Vec<u8>; 2],
    kept_bytes: usize,
    max_bytes: usize,
    truncated: bool,
}

impl LogCapture {
    /// A capture keeping at most `max_bytes` of output; the rest is dropped and one marker line
    /// says so.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            stream: LogStream::Stdout,
            state: Arc::new(Mutex::new(CaptureState {
                lines: Vec::new(),
                partial: [Vec::new(), Vec::new()],
                kept_bytes: 0,
                max_bytes,
                truncated: false,
            })),
        }
    }

    pub fn stdout(&self) -> Self {
        Self {
            stream: LogStream::Stdout,
            state: self.state.clone(),
        }
    }

    pub fn stderr(&self) -> Self {
        Self {
            stream: LogStream::Stderr,
            state: self.state.clone(),
        }
    }

    /// Everything captured since the last call, unterminated last lines included; the size
    /// budget starts again (a reused instance captures each invocation separately).
    pub fn take_lines(&self) -> Vec<CapturedLine> {
        let mut state = self.lock();
        state.kept_bytes = 0;
        state.truncated = false;
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let rest = std::mem::take(&mut state.partial[index(stream)]);
            if !rest.is_empty() {
                state.push_line(stream, &rest);
            }
        }
        std::mem::take(&mut state.lines)
    }

    /// The message of a Rust panic the guest printed, if any: the line after `panicked at`.
    pub fn panic_message(&self) -> Option<String> {
        let state = self.lock();
        let at = state
            .lines
            .iter()
            .rposition(|l| l.stream == LogStream::Stderr && l.line.contains("panicked at"))?;
        let next = state.lines[at + 1..]
            .iter()
            .find(|l| l.stream == LogStream::Stderr);
        Some(next.map_or_else(|| state.lines[at].line.clone(), |l| l.line.clone()))
    }

    /// Adds a line from Vireo itself, `[vireo: message]`, to the invocation's stderr, outside
    /// the output budget (callers note something at most a few times per invocation).
    pub fn note(&self, message: &str) {
        let line = format!("[vireo: {message}]");
        self.lock().push_line(LogStream::Stderr, line.as_bytes());
    }

    fn write(&self, bytes: &[u8]) {
        self.lock().write(self.stream, bytes);
    }

    fn lock(&self) -> MutexGuard<'_, CaptureState> {
        // A poisoned lock only means another writer panicked mid-append; the lines are intact.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn index(stream: LogStream) -> usize {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
    }
}

impl CaptureState {
    fn write(&mut self, stream: LogStream, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.truncated {
                return;
            }
            let room = self.max_bytes.saturating_sub(self.kept_bytes);
            if room == 0 {
                self.truncate();
                return;
            }
            let (line_end, next) = match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => (Some(i), i + 1),
                None => (None, bytes.len()),
            };
            let chunk = &bytes[..line_end.unwrap_or(bytes.len())];
            let kept = chunk.len().min(room);
            self.partial[index(stream)].extend_from_slice(&chunk[..kept]);
            self.kept_bytes += kept + usize::from(line_end.is_some());
            if kept < chunk.len() {
                self.truncate();
                return;
            }
            if line_end.is_some() {
                let line = std::mem::take(&mut self.partial[index(stream)]);
                self.push_line(stream, &line);
            }
            bytes = &bytes[next..];
        }
    }

    fn push_line(&mut self, stream: LogStream, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.lines.push(CapturedLine {
            at_us: vireo_core::time::now_micros(),
            stream,
            line: String::from_utf8_lossy(line).into_owned(),
        });
    }

    fn truncate(&mut self) {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let rest = std::mem::take(&mut self.partial[index(stream)]);
            if !rest.is_empty() {
                self.push_line(stream, &rest);
            }
        }
        let marker = format!(
            "[vireo: output truncated, only the first {} bytes are kept]",
            self.max_bytes
        );
        self.push_line(LogStream::Stderr, marker.as_bytes());
        self.truncated = true;
    }
}

impl IsTerminal for LogCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogCapture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        LogCapture::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: past the cap, output is dropped rather than blocking the guest.
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogCapture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LogCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        LogCapture::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[CapturedLine]) -> Vec<(LogStream, &str)> {
        lines.iter().map(|l| (l.stream, l.line.as_str())).collect()
    }

    #[test]
    fn splits_lines_per_stream() {
        let capture = LogCapture::new(1024);
        capture.stdout().write(b"one\ntw");
        capture.stderr().write(b"err\r\n");
        capture.stdout().write(b"o\nthree");
        let lines = capture.take_lines();
        assert_eq!(
            texts(&lines),
            [
                (LogStream::Stdout, "one"),
                (LogStream::Stderr, "err"),
                (LogStream::Stdout, "two"),
                (LogStream::Stdout, "three")
            ]
        );
    }

    #[test]
    fn keeps_at_most_the_cap_and_marks_truncation() {
        let capture = LogCapture::new(10);
        capture.stdout().write(b"12345\n67890abc\nmore\n");
        capture.stdout().write(b"ignored\n");
        let lines = capture.take_lines();
        assert_eq!(
            texts(&lines),
            [
                (LogStream::Stdout, "12345"),
                (LogStream::Stdout, "6789"),
                (
                    LogStream::Stderr,
                    "[vireo: output truncated, only the first 10 bytes are kept]"
                )
            ]
        );
    }
}
