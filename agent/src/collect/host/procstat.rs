//! CPU usage from `/proc/stat` and load from `/proc/loadavg`, with both files kept
//! open and re-read with `pread` at offset 0 (procfs regenerates them): two
//! syscalls per 100 ms tick instead of an open/stat/read/close per file, which is
//! what most of the host collector's CPU went to.
//!
//! Usage has sysinfo's definition: over the interval between two reads, busy
//! (user + nice + system + irq + softirq + steal) over busy + idle + iowait
//! (guest time is already inside user).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `/proc/stat` is read up to this size (its `cpu` lines come first; a p5's 192
/// lines fit in 16 KiB).
const MAX_STAT_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ProcStatError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {what}")]
    Parse { path: PathBuf, what: String },
}

/// Cumulative jiffies of one CPU line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Times {
    busy: u64,
    total: u64,
}

/// Usage in percent between two readings (0 when no time passed).
fn usage(prev: Times, now: Times) -> f32 {
    let total = now.total.saturating_sub(prev.total);
    if total == 0 {
        return 0.0;
    }
    let busy = now.busy.saturating_sub(prev.busy).min(total);
    (busy as f64 / total as f64 * 100.0) as f32
}

/// Parses one `cpu…` line's numbers (after the label).
fn times(fields: &str) -> Option<Times> {
    let mut v = [0u64; 8];
    let mut n = 0;
    for (slot, f) in v.iter_mut().zip(fields.split_ascii_whitespace()) {
        *slot = f.parse().ok()?;
        n += 1;
    }
    // user nice system idle at least (kernels since 2.6 give 8 or more).
    if n < 4 {
        return None;
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v;
    let busy = user
        .saturating_add(nice)
        .saturating_add(system)
        .saturating_add(irq)
        .saturating_add(softirq)
        .saturating_add(steal);
    Some(Times {
        busy,
        total: busy.saturating_add(idle).saturating_add(iowait),
    })
}

/// The aggregate line and the per-CPU lines of a `/proc/stat` text, in order.
fn parse_stat(text: &str) -> Result<(Times, Vec<Times>), String> {
    let mut total = None;
    let mut cores = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            // The cpu lines come first; the rest (intr, ctxt, …) is not needed.
            break;
        };
        let (label, fields) = rest.split_once(' ').unwrap_or((rest, ""));
        let t = times(fields).ok_or_else(|| format!("malformed line {line:?}"))?;
        if label.is_empty() {
            total = Some(t);
        } else if label.bytes().all(|b| b.is_ascii_digit()) {
            cores.push(t);
        } else {
            return Err(format!("unexpected line {line:?}"));
        }
    }
    Ok((total.ok_or("no aggregate cpu line")?, cores))
}

/// The first three fields of `/proc/loadavg`.
fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_ascii_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// A procfs file kept open.
struct Kept {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl Kept {
    fn open(path: PathBuf, cap: usize) -> Result<Self, ProcStatError> {
        let file = File::open(&path).map_err(|source| ProcStatError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Kept {
            path,
            file,
            buf: vec![0; cap],
        })
    }

    /// Reads the file from offset 0, as much as fits the buffer; returns the length
    /// of its text (UTF-8). `done`: the text read so far is all the caller needs;
    /// otherwise a full buffer doubles (up to `max`) and the read is repeated.
    fn read(&mut self, max: usize, done: impl Fn(&str) -> bool) -> Result<usize, ProcStatError> {
        loop {
            let n = loop {
                match self.file.read_at(&mut self.buf, 0) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => {
                        break r.map_err(|source| ProcStatError::Io {
                            path: self.path.clone(),
                            source,
                        })?
                    }
                }
            };
            let full = n == self.buf.len();
            if !full || done(self.text(n)?) || self.buf.len() >= max {
                return Ok(n);
            }
            let grown = (self.buf.len() * 2).min(max);
            self.buf.resize(grown, 0);
        }
    }

    /// The first `n` bytes read, as text.
    fn text(&self, n: usize) -> Result<&str, ProcStatError> {
        std::str::from_utf8(&self.buf[..n.min(self.buf.len())]).map_err(|e| ProcStatError::Parse {
            path: self.path.clone(),
            what: format!("not UTF-8: {e}"),
        })
    }

    fn parse_error(&self, what: String) -> ProcStatError {
        ProcStatError::Parse {
            path: self.path.clone(),
            what,
        }
    }
}

/// CPU usage (total and per CPU) and load average, read with kept descriptors.
pub struct ProcStat {
    stat: Kept,
    loadavg: Kept,
    prev: Option<(Times, Vec<Times>)>,
}

/// One reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuReading {
    /// Percent of all CPUs busy since the previous reading (0 on the first).
    pub total_pct: f32,
    pub per_core_pct: Vec<f32>,
    pub load: [f64; 3],
}

impl ProcStat {
    /// Opens `<proc_root>/stat` and `<proc_root>/loadavg` and takes a first reading.
    pub fn new(proc_root: &Path) -> Result<Self, ProcStatError> {
        let mut s = ProcStat {
            stat: Kept::open(proc_root.join("stat"), 16 << 10)?,
            loadavg: Kept::open(proc_root.join("loadavg"), 256)?,
            prev: None,
        };
        s.read()?;
        Ok(s)
    }

    /// Number of CPUs in the last reading.
    pub fn cpu_count(&self) -> usize {
        self.prev.as_ref().map_or(0, |(_, c)| c.len())
    }

    /// Reads both files; usage is over the time since the previous call.
    pub fn read(&mut self) -> Result<CpuReading, ProcStatError> {
        // Complete once a whole line that is not a cpu line has been read.
        let n = self.stat.read(MAX_STAT_BYTES, |t| {
            t.split_inclusive('\n')
                .any(|l| l.ends_with('\n') && !l.starts_with("cpu"))
        })?;
        let (total, cores) =
            parse_stat(self.stat.text(n)?).map_err(|what| self.stat.parse_error(what))?;
        let n = self.loadavg.read(256, |_| true)?;
        let text = self.loadavg.text(n)?;
        let load = parse_loadavg(text).ok_or_else(|| {
            self.loadavg
                .parse_error(format!("malformed {:?}", text.trim()))
        })?;
        let mut r = CpuReading {
            load,
            ..Default::default()
        };
        if let Some((ptotal, pcores)) = &self.prev {
            r.total_pct = usage(*ptotal, total);
            // A CPU that came online has no previous line: 0 until the next read.
            r.per_core_pct = cores
                .iter()
                .enumerate()
                .map(|(i, c)| pcores.get(i).map_or(0.0, |p| usage(*p, *c)))
                .collect();
        } else {
            r.per_core_pct = vec![0.0; cores.len()];
        }
        self.prev = Some((total, cores));
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0\n\
cpu0 60 0 20 400 20 0 0 0 0 0\n\
cpu1 40 0 30 400 30 0 0 0 0 0\n\
intr 12345 1 2 3\nctxt 999\n";

    #[test]
    fn parses_and_computes_usage_like_sysinfo() {
        let (total, cores) = parse_stat(STAT).unwrap();
        assert_eq!(
            total,
            Times {
                busy: 150,
                total: 1000
            }
        );
        assert_eq!(cores.len(), 2);
        let later = Times {
            busy: 250,
            total: 1400,
        };
        assert!((usage(total, later) - 25.0).abs() < 1e-6);
        assert_eq!(usage(total, total), 0.0);
        // Counters that went backwards (hotplug) never give more than 100 %.
        assert!(usage(later, total) <= 100.0);
    }

    #[test]
    fn malformed_stat_and_loadavg_are_errors() {
        assert!(parse_stat("cpu  1 2\n").is_err());
        assert!(parse_stat("cpu0 1 2 3 4\n").is_err());
        assert!(parse_stat("cpu  a b c d\n").is_err());
        assert!(parse_stat("cpux 1 2 3 4\n").is_err());
        assert!(parse_stat("").is_err());
        assert_eq!(
            parse_loadavg("0.50 0.25 0.10 1/100 42\n"),
            Some([0.5, 0.25, 0.1])
        );
        assert_eq!(parse_loadavg("0.50 x"), None);
    }

    #[test]
    fn reads_a_fixture_tree_and_rereads_in_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), STAT).unwrap();
        std::fs::write(dir.path().join("loadavg"), "1.5 1.0 0.5 2/300 7\n").unwrap();
        let mut p = ProcStat::new(dir.path()).unwrap();
        assert_eq!(p.cpu_count(), 2);
        // Rewritten in place (the kept descriptor reads the same inode).
        let next = STAT
            .replace("cpu  100 0 50 800 50", "cpu  200 0 50 1000 50")
            .replace("cpu0 60 0 20 400 20", "cpu0 160 0 20 400 20");
        std::fs::write(dir.path().join("stat"), next).unwrap();
        let r = p.read().unwrap();
        assert!((r.total_pct - 100.0 / 300.0 * 100.0).abs() < 1e-3, "{r:?}");
        assert_eq!(r.per_core_pct, vec![100.0, 0.0]);
        assert_eq!(r.load, [1.5, 1.0, 0.5]);
        std::fs::write(dir.path().join("loadavg"), "garbage\n").unwrap();
        let e = p.read().unwrap_err().to_string();
        assert!(e.contains("loadavg") && e.contains("garbage"), "{e}");
    }

    #[test]
    fn real_proc_gives_usage_in_range() {
        let mut p = match ProcStat::new(Path::new("/proc")) {
            Ok(p) => p,
            Err(e) => {
                println!("skipped: no /proc here ({e})");
                return;
            }
        };
        let n = p.cpu_count();
        assert!(n >= 1);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let r = p.read().unwrap();
        assert_eq!(r.per_core_pct.len(), n);
        assert!((0.0..=100.0).contains(&r.total_pct));
        assert!(r.per_core_pct.iter().all(|c| (0.0..=100.0).contains(c)));
    }
}
