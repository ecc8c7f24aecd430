//! One followed file: reads appends, splits bounded lines, survives truncation
//! and rotation, and rate-limits what it sends.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{is_milestone, MAX_EVENTS_PER_S, MAX_LINE, MAX_MESSAGE, MAX_READ_PER_POLL};

/// One followed file.
pub(super) struct Tail {
    file: File,
    pub(super) dev_ino: (u64, u64),
    pos: u64,
    partial: Vec<u8>,
    /// Inside a line longer than [`MAX_LINE`]: drop bytes until its newline.
    skipping: bool,
    /// The first whole line is sent whatever it says (the log's start-time anchor).
    sent_first: bool,
    /// The first line naming the Ray Serve LLM replica is sent too.
    sent_actor: bool,
    window: Instant,
    in_window: u32,
    /// Still found by the latest discovery.
    pub(super) seen: bool,
    /// When the path was first found missing (rotation in progress), if it is.
    pub(super) missing_since: Option<Instant>,
}

impl Tail {
    /// Opens a file at its end (`from_start`: at its beginning, for a rotated file).
    pub(super) fn open(path: &Path, from_start: bool) -> std::io::Result<Tail> {
        let mut file = File::open(path)?;
        let md = file.metadata()?;
        let pos = if from_start {
            0
        } else {
            file.seek(SeekFrom::End(0))?
        };
        Ok(Tail {
            file,
            dev_ino: (md.dev(), md.ino()),
            pos,
            partial: Vec::new(),
            skipping: false,
            sent_first: false,
            sent_actor: false,
            window: Instant::now(),
            in_window: 0,
            seen: true,
            missing_since: None,
        })
    }

    /// Reads what was appended; calls `emit` for each line to send. Reopens a
    /// rotated file from its start and rereads a truncated one from its start.
    pub(super) fn poll(&mut self, path: &Path, emit: &mut dyn FnMut(&str)) -> std::io::Result<()> {
        let md = match std::fs::metadata(path) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.missing_since.get_or_insert_with(Instant::now);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.missing_since = None;
        if (md.dev(), md.ino()) != self.dev_ino {
            *self = Tail::open(path, true)?;
        } else if md.len() < self.pos {
            self.file.seek(SeekFrom::Start(0))?;
            self.pos = 0;
            self.partial.clear();
            self.skipping = false;
        }
        let mut buf = [0u8; 16 * 1024];
        let mut read = 0usize;
        while read < MAX_READ_PER_POLL {
            let n = match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            read += n;
            self.pos += n as u64;
            self.take(&buf[..n], emit);
        }
        Ok(())
    }

    fn take(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(&str)) {
        while !bytes.is_empty() {
            let (chunk, done) = match memchr_nl(bytes) {
                Some(i) => (&bytes[..i], Some(i + 1)),
                None => (bytes, None),
            };
            if !self.skipping {
                if self.partial.len() + chunk.len() > MAX_LINE {
                    self.partial.clear();
                    self.skipping = true;
                } else {
                    self.partial.extend_from_slice(chunk);
                }
            }
            match done {
                Some(k) => {
                    if !self.skipping {
                        let line = String::from_utf8_lossy(&self.partial).into_owned();
                        self.line(line.trim_end_matches('\r'), emit);
                    }
                    self.partial.clear();
                    self.skipping = false;
                    bytes = &bytes[k..];
                }
                None => break,
            }
        }
    }

    fn line(&mut self, line: &str, emit: &mut dyn FnMut(&str)) {
        let first = !self.sent_first && !line.trim().is_empty();
        let actor = !self.sent_actor && line.contains("LLMServer");
        if !(first || actor || is_milestone(line)) {
            return;
        }
        self.sent_first |= first;
        self.sent_actor |= actor;
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.in_window = 0;
        }
        if self.in_window >= MAX_EVENTS_PER_S {
            return;
        }
        self.in_window += 1;
        emit(cut(line, MAX_MESSAGE));
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_dropped_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, "").unwrap();
        let mut t = Tail::open(&p, false).unwrap();
        let mut got = Vec::new();
        let long = format!("Loading weights took {}\n", "x".repeat(MAX_LINE));
        t.take(b"first\n", &mut |l| got.push(l.to_string()));
        t.take(long.as_bytes(), &mut |l| got.push(l.to_string()));
        let mid = format!("KV cache {}\n", "y".repeat(MAX_MESSAGE));
        t.take(mid.as_bytes(), &mut |l| got.push(l.to_string()));
        t.take(b"Loading weights ", &mut |l| got.push(l.to_string()));
        t.take(b"took 1.0 seconds\n", &mut |l| got.push(l.to_string()));
        assert_eq!(
            got.len(),
            3,
            "{:?}",
            got.iter().map(|g| g.len()).collect::<Vec<_>>()
        );
        assert_eq!(got[0], "first");
        assert_eq!(got[1].len(), MAX_MESSAGE);
        assert_eq!(got[2], "Loading weights took 1.0 seconds");
    }
}
