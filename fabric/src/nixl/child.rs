//! The NIXL driver as a supervised child process: its two Python files written into
//! a private directory, requests as JSON lines on its stdin, replies read from its
//! stdout with a bounded line length, its stderr kept bounded (the first and the
//! last bytes: UCX prints its protocol tables early), a deadline and a cancel check
//! on every wait, and the process killed when the probe ends or is dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::FabricError;

const DRIVER_PY: &str = include_str!("../../py/nixl_driver.py");
const MEASURE_PY: &str = include_str!("../../py/nixl_measure.py");

/// Longest stdout line accepted (metadata lines are a few KiB).
pub const MAX_LINE: usize = 4 << 20;
/// Stderr kept: this many bytes from the start and this many from the end.
pub const STDERR_HEAD: usize = 512 << 10;
pub const STDERR_TAIL: usize = 64 << 10;
/// How often a wait looks at the cancel flag.
const POLL: Duration = Duration::from_millis(50);

/// What the child is started with.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    pub python: PathBuf,
    /// Extra environment for the child only (UCX_TLS, UCX_PROTO_INFO, ...).
    pub env: Vec<(String, String)>,
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// The child's stderr: the head and a rolling tail.
#[derive(Debug, Default)]
struct StderrLog {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl StderrLog {
    fn push(&mut self, mut b: &[u8]) {
        let room = STDERR_HEAD.saturating_sub(self.head.len());
        let n = room.min(b.len());
        self.head.extend_from_slice(&b[..n]);
        b = &b[n..];
        self.tail.extend(b);
        while self.tail.len() > STDERR_TAIL {
            self.tail.pop_front();
            self.dropped += 1;
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            s.push_str(&format!("\n[... {} bytes left out ...]\n", self.dropped));
        }
        let (a, b) = self.tail.as_slices();
        s.push_str(&String::from_utf8_lossy(a));
        s.push_str(&String::from_utf8_lossy(b));
        s
    }
}

/// A private 0700 directory (the driver's files, a copy of NIXL's telemetry reader),
/// removed on drop.
pub(crate) struct PrivateDir(pub(crate) PathBuf);

impl PrivateDir {
    /// A new directory nobody else owns.
    pub(crate) fn new() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "servescope-nixl-{}-{}-{nanos:x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // create (not create_all): fails if the name exists, so nobody else owns it.
        std::fs::DirBuilder::new().mode(0o700).create(&p)?;
        Ok(PrivateDir(p))
    }

    /// A new directory holding the driver's files.
    fn with_driver() -> std::io::Result<Self> {
        let me = Self::new()?;
        std::fs::write(me.0.join("nixl_driver.py"), DRIVER_PY)?;
        std::fs::write(me.0.join("nixl_measure.py"), MEASURE_PY)?;
        Ok(me)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One line from the child's stdout, or why there are no more.
enum Line {
    Text(String),
    End(String),
}

/// A running driver.
pub struct DriverChild {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<StderrLog>>,
    _dir: PrivateDir,
    ended: Option<String>,
}

fn read_lines(out: impl Read, tx: mpsc::Sender<Line>) {
    let mut r = BufReader::new(out);
    loop {
        let mut buf = Vec::new();
        match r
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => {
                let _ = tx.send(Line::End("its stdout closed".into()));
                return;
            }
            Ok(_) if buf.len() > MAX_LINE => {
                let _ = tx.send(Line::End(format!("a stdout line over {MAX_LINE} bytes")));
                return;
            }
            Ok(_) => {
                if tx
                    .send(Line::Text(String::from_utf8_lossy(&buf).into_owned()))
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Line::End(format!("reading its stdout: {e}")));
                return;
            }
        }
    }
}

impl DriverChild {
    /// Writes the driver into a private directory and starts it.
    pub fn start(s: &Spawn) -> Result<Self, FabricError> {
        let dir = PrivateDir::with_driver().map_err(|e| {
            FabricError::NixlUnavailable(format!("cannot write the driver files: {e}"))
        })?;
        let mut cmd = Command::new(&s.python);
        cmd.arg(dir.0.join("nixl_driver.py"))
            .args(["--max-bytes", &s.max_bytes.to_string()])
            .args(["--timeout-s", &s.timeout.as_secs_f64().to_string()])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .envs(s.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&dir.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            FabricError::NixlUnavailable(format!("cannot start {}: {e}", s.python.display()))
        })?;
        let (tx, lines) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(StderrLog::default()));
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || read_lines(out, tx));
        }
        if let Some(mut err) = child.stderr.take() {
            let log = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 << 10];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(&buf[..n]);
                }
            });
        }
        Ok(DriverChild {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            _dir: dir,
            ended: None,
        })
    }

    /// What the child wrote to stderr so far (head and tail).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).text()
    }

    fn last_stderr(&self, n: usize) -> String {
        let s = self.stderr();
        let start = s.len().saturating_sub(n);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].trim().to_string()
    }

    /// Writes one request line.
    pub fn send(&mut self, req: &Value) -> Result<(), FabricError> {
        let cmd = req["cmd"].as_str().unwrap_or("?").to_string();
        let mut line = req.to_string();
        line.push('\n');
        let written = match self.stdin.as_mut() {
            None => Err("stdin closed".to_string()),
            Some(stdin) => stdin
                .write_all(line.as_bytes())
                .and_then(|_| stdin.flush())
                .map_err(|e| format!("writing the request: {e}")),
        };
        written.map_err(|why| self.exited(&cmd, &why))
    }

    fn exited(&mut self, cmd: &str, why: &str) -> FabricError {
        // Give a dying child a moment so that its status and last words are there.
        let t0 = Instant::now();
        let mut status = None;
        while t0.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(st)) = self.child.try_wait() {
                status = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        let status = status.map_or("still running".to_string(), |s| s.to_string());
        FabricError::Nixl {
            cmd: cmd.into(),
            kind: "exited".into(),
            message: format!(
                "the driver ended ({why}; {status}); its last stderr: {}",
                self.last_stderr(2000)
            ),
        }
    }

    /// Waits for the reply to `cmd` (events before it go to `on_event`) until
    /// `deadline`; `cancel` is asked every 50 ms. A reply with ok=false is an error.
    pub fn reply(
        &mut self,
        cmd: &str,
        deadline: Instant,
        cancel: &dyn Fn() -> bool,
        on_event: &mut dyn FnMut(&Value),
    ) -> Result<Value, FabricError> {
        loop {
            if cancel() {
                self.kill();
                return Err(FabricError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill();
                return Err(FabricError::Timeout(
                    Duration::ZERO,
                    "the NIXL driver's reply",
                ));
            }
            let line = match self.lines.recv_timeout(left.min(POLL)) {
                Ok(Line::Text(t)) => t,
                Ok(Line::End(why)) => {
                    self.ended = Some(why.clone());
                    return Err(self.exited(cmd, &why));
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    let why = self
                        .ended
                        .clone()
                        .unwrap_or_else(|| "its stdout closed".into());
                    return Err(self.exited(cmd, &why));
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| FabricError::Nixl {
                cmd: cmd.into(),
                kind: "protocol".into(),
                message: format!("not a JSON line ({e}): {:.200}", line.trim()),
            })?;
            if v.get("event").is_some() {
                on_event(&v);
                continue;
            }
            if v["ok"].as_bool() == Some(true) {
                return Ok(v);
            }
            let kind = v["kind"].as_str().unwrap_or("error").to_string();
            let message = v["error"].as_str().unwrap_or("no message").to_string();
            return Err(if kind == "unavailable" {
                FabricError::NixlUnavailable(message)
            } else {
                FabricError::Nixl {
                    cmd: cmd.into(),
                    kind,
                    message,
                }
            });
        }
    }

    /// Sends a request and waits for its reply.
    pub fn request(
        &mut self,
        req: Value,
        deadline: Instant,
        cancel: &dyn Fn() -> bool,
        on_event: &mut dyn FnMut(&Value),
    ) -> Result<Value, FabricError> {
        let cmd = req["cmd"].as_str().unwrap_or("?").to_string();
        self.send(&req)?;
        self.reply(&cmd, deadline, cancel, on_event)
    }

    /// Ends the child now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin (the driver exits when it sees the end) and waits up to
    /// `grace`, then kills.
    pub fn shutdown(&mut self, grace: Duration) {
        self.stdin = None;
        let t0 = Instant::now();
        while t0.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// The directory the driver runs in (for tests).
    pub fn dir(&self) -> &Path {
        &self._dir.0
    }
}

impl Drop for DriverChild {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_head_and_tail() {
        let mut l = StderrLog::default();
        l.push(&vec![b'a'; STDERR_HEAD]);
        l.push(&vec![b'b'; STDERR_TAIL + 10]);
        l.push(b"end");
        let t = l.text();
        assert!(t.starts_with("aaa"));
        assert!(t.ends_with("bbbend"));
        assert!(t.contains("[... 13 bytes left out ...]"));
    }

    #[test]
    fn a_python_that_exits_is_an_error_with_its_stderr() {
        let mut c = DriverChild::start(&Spawn {
            python: "/bin/sh".into(),
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(5),
            ..Default::default()
        })
        .expect("start");
        let mode = std::fs::metadata(c.dir()).map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o777
        });
        assert_eq!(mode.ok(), Some(0o700));
        let dir = c.dir().to_path_buf();
        let e = c
            .request(
                serde_json::json!({"cmd": "hello"}),
                Instant::now() + Duration::from_secs(10),
                &|| false,
                &mut |_| {},
            )
            .expect_err("sh is no driver");
        assert!(
            matches!(e, FabricError::Nixl { ref kind, .. } if kind == "exited"),
            "{e}"
        );
        drop(c);
        assert!(!dir.exists(), "private directory removed");
    }
}
