//! Guest stdout/stderr as log lines.
//!
//! Writes complete synchronously (the guest never waits on the host for
//! output, so a workflow's fiber only ever suspends in `wait`); complete
//! lines go to a sink, which logs them with the run's tags.

use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Receives each complete line the guest writes.
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Longest line kept; longer output is split.
const MAX_LINE: usize = 8 * 1024;

/// A stdout or stderr that turns output into log lines.
#[derive(Clone)]
pub struct LineLog {
    sink: LineSink,
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl LineLog {
    /// Output goes line by line to `sink`.
    pub fn new(sink: LineSink) -> Self {
        LineLog { sink, buffer: Arc::default() }
    }

    fn push(&self, bytes: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.extend_from_slice(bytes);
        loop {
            let take = match buffer.iter().position(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                None if buffer.len() >= MAX_LINE => MAX_LINE,
                None => break,
            };
            let line: Vec<u8> = buffer.drain(..take).collect();
            let text = String::from_utf8_lossy(&line);
            (self.sink)(text.trim_end_matches(['\n', '\r']));
        }
    }
}

impl Drop for LineLog {
    fn drop(&mut self) {
        // The last clone flushes a final unterminated line.
        if Arc::strong_count(&self.buffer) == 1 {
            let buffer = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()));
            if !buffer.is_empty() {
                (self.sink)(String::from_utf8_lossy(&buffer).trim_end());
            }
        }
    }
}

impl IsTerminal for LineLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LineLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncLineLog(self.clone()))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLog {
    async fn ready(&mut self) {}
}

impl OutputStream for LineLog {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

struct AsyncLineLog(LineLog);

impl tokio::io::AsyncWrite for AsyncLineLog {
    fn poll_write(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        self.0.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Lines of stderr kept for a failure report.
const STDERR_TAIL: usize = 40;

/// What a guest said about an error before it failed: its last
/// error-level log message (a guest library logs the traceback there
/// before trapping) or, failing that, the tail of its stderr (where
/// CPython and the JS engine print uncaught exceptions). A trap alone says
/// "unreachable executed"; this says why. Kept while replaying too, when
/// the lines themselves are not logged.
#[derive(Debug, Clone, Default)]
pub struct ErrorOutput(Arc<Mutex<ErrorLines>>);

#[derive(Debug, Default)]
struct ErrorLines {
    last_error_log: Option<String>,
    stderr: std::collections::VecDeque<String>,
}

impl ErrorOutput {
    /// Records an error-level log message.
    pub fn error_logged(&self, message: &str) {
        self.lock().last_error_log = Some(message.to_owned());
    }

    /// Records one line of stderr.
    pub fn stderr_line(&self, line: &str) {
        let mut lines = self.lock();
        if lines.stderr.len() == STDERR_TAIL {
            lines.stderr.pop_front();
        }
        lines.stderr.push_back(line.to_owned());
    }

    /// The whole recorded output (for a failure's stack trace), if any.
    pub fn text(&self) -> Option<String> {
        let lines = self.lock();
        match &lines.last_error_log {
            Some(message) => Some(message.clone()),
            None if lines.stderr.iter().any(|l| !l.trim().is_empty()) => Some(Vec::from(lines.stderr.clone()).join("\n")),
            None => None,
        }
    }

    /// `; its last error output: LINE` with the last non-empty line (for a
    /// Python traceback, the exception itself), or nothing.
    pub fn suffix(&self) -> String {
        self.text()
            .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!("; its last error output: {}", l.trim())))
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ErrorLines> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_output_prefers_the_logged_error_and_names_its_last_line() {
        let out = ErrorOutput::default();
        assert_eq!(out.suffix(), "");
        for l in ["Traceback (most recent call last):", "  File \"app.py\", line 3", "ValueError: boom", ""] {
            out.stderr_line(l);
        }
        assert_eq!(out.suffix(), "; its last error output: ValueError: boom");
        assert!(out.text().unwrap().starts_with("Traceback"));
        out.error_logged("Traceback ...\nKeyError: 'x'");
        assert_eq!(out.suffix(), "; its last error output: KeyError: 'x'");
        for n in 0..100 {
            out.stderr_line(&n.to_string());
        }
        assert_eq!(out.lock().stderr.len(), STDERR_TAIL);
    }

    #[test]
    fn splits_lines_and_flushes_the_rest_on_drop() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = lines.clone();
        let log = LineLog::new(Arc::new(move |l: &str| seen.lock().unwrap().push(l.to_owned())));
        log.push(b"one\ntw");
        log.push(b"o\r\nthree");
        assert_eq!(*lines.lock().unwrap(), vec!["one", "two"]);
        drop(log);
        assert_eq!(*lines.lock().unwrap(), vec!["one", "two", "three"]);
    }

    #[test]
    fn very_long_lines_are_split() {
        let count = Arc::new(Mutex::new(0));
        let c = count.clone();
        let log = LineLog::new(Arc::new(move |_: &str| *c.lock().unwrap() += 1));
        log.push(&vec![b'x'; MAX_LINE * 3]);
        assert_eq!(*count.lock().unwrap(), 3);
    }
}
