//! CPU time and peak RSS of a process and of its threads, from /proc.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;

fn hz() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// utime + stime of a process, in seconds, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the ")" that closes comm: state is field 3; utime 14, stime 15.
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11).context("no utime")?.parse()?;
    let st: f64 = f.get(12).context("no stime")?.parse()?;
    Ok((ut + st) / hz())
}

/// Peak resident set (VmHWM) in bytes.
fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kb * 1024)
}

/// utime + stime in seconds per thread name (`/proc/<pid>/task/*/stat`).
fn thread_cpu(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    let hz = hz();
    for e in dir.flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
            continue;
        };
        let name = s[open + 1..close].to_string();
        let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        *out.entry(name).or_insert(0.0) += (t(11) + t(12)) / hz;
    }
    out
}

/// A process's CPU counters at one moment.
pub struct Snapshot {
    pid: u32,
    at: Instant,
    cpu: f64,
    threads: BTreeMap<String, f64>,
}

/// CPU over a window, as % of one core.
pub struct Measured {
    pub cpu_pct: f64,
    pub rss: u64,
    /// Per thread name (threads of one name summed), > 0 only.
    pub threads: Vec<(String, f64)>,
    pub seconds: f64,
}

impl Measured {
    /// Summed % of the threads whose name starts with one of `prefixes`.
    pub fn threads_pct(&self, prefixes: &[&str]) -> f64 {
        self.threads
            .iter()
            .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p)))
            .map(|t| t.1)
            .sum()
    }
}

impl Snapshot {
    pub fn take(pid: u32) -> anyhow::Result<Snapshot> {
        Ok(Snapshot {
            pid,
            at: Instant::now(),
            cpu: cpu_seconds(pid)?,
            threads: thread_cpu(pid),
        })
    }

    /// What the process used since this snapshot.
    pub fn since(&self) -> anyhow::Result<Measured> {
        let later = Snapshot::take(self.pid)?;
        let dt = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let threads = later
            .threads
            .iter()
            .map(|(n, c)| {
                let before = self.threads.get(n).copied().unwrap_or(0.0);
                (n.clone(), (c - before) / dt * 100.0)
            })
            .filter(|(_, pct)| *pct > 0.0)
            .collect();
        Ok(Measured {
            cpu_pct: (later.cpu - self.cpu) / dt * 100.0,
            rss: peak_rss(self.pid)?,
            threads,
            seconds: dt,
        })
    }
}
