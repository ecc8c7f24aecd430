//! Following a log file during the window.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::analysis::startup::logparse::{LogParse, LogParser, MAX_LINE};
use crate::analysis::startup::ParseOptions;

/// Follows a log file: appended bytes only, from the start again if the file is
/// truncated or replaced; lines longer than [`MAX_LINE`] are skipped and counted.
pub(super) struct Tail {
    path: PathBuf,
    pos: u64,
    ino: Option<u64>,
    parser: LogParser,
    opts: ParseOptions,
    partial: Vec<u8>,
    too_long: bool,
}

impl Tail {
    /// From the end of what the file holds now, or from its start.
    pub(super) fn new(path: &Path, opts: &ParseOptions, from_start: bool) -> Tail {
        let meta = std::fs::metadata(path).ok();
        Tail {
            path: path.to_path_buf(),
            pos: meta.as_ref().filter(|_| !from_start).map_or(0, |m| m.len()),
            ino: meta.map(|m| m.ino()),
            parser: LogParser::new(opts.clone()),
            opts: opts.clone(),
            partial: Vec::new(),
            too_long: false,
        }
    }

    pub(super) fn poll(&mut self) {
        let Ok(mut f) = File::open(&self.path) else {
            return;
        };
        let Ok(meta) = f.metadata() else { return };
        if self.ino.is_some_and(|i| i != meta.ino()) || meta.len() < self.pos {
            // A restarted command rewrote its log: this window's lines start at 0.
            self.pos = 0;
            self.parser = LogParser::new(self.opts.clone());
            self.partial.clear();
            self.too_long = false;
        }
        self.ino = Some(meta.ino());
        if meta.len() == self.pos || f.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            self.pos += n as u64;
            self.feed(&buf[..n]);
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (take, done) = match memchr::memchr(b'\n', data) {
                Some(i) => (i, true),
                None => (data.len(), false),
            };
            if self.partial.len() + take > MAX_LINE {
                self.too_long = true;
                self.partial.clear();
            } else if !self.too_long {
                self.partial.extend_from_slice(&data[..take]);
            }
            if done {
                self.end_line();
                data = &data[take + 1..];
            } else {
                data = &[];
            }
        }
    }

    fn end_line(&mut self) {
        if std::mem::take(&mut self.too_long) {
            self.parser.skip_long_line();
        } else {
            self.parser
                .push_line(&String::from_utf8_lossy(&self.partial));
        }
        self.partial.clear();
    }

    pub(super) fn finish(mut self) -> LogParse {
        self.poll();
        if !self.partial.is_empty() || self.too_long {
            self.end_line();
        }
        let name = self
            .path
            .file_name()
            .map_or(self.path.display().to_string(), |n| {
                n.to_string_lossy().into_owned()
            });
        self.parser.finish(&name)
    }
}
