//! CPU time and peak RSS of a process and of its threads, from /proc.
//!
//! Each thread's CPU comes from `/proc/<pid>/task/<tid>/schedstat` (first field: ns
//! on CPU), exact to the nanosecond; `stat`'s utime + stime count in clock ticks
//! (10 ms), too coarse for a 30 s window at 0.2 % of a core (6 ticks). A thread
//! without `schedstat` (a kernel without schedstats) falls back to its ticks. The
//! process total is the sum over its threads, unless a thread exited during the
//! window (its time left with it): then the process's own ticks.

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

/// The name (comm) and utime + stime in clock ticks from a `stat` line; the comm
/// may hold spaces and parentheses, so fields are counted after the last ")".
pub fn parse_stat(s: &str) -> Option<(String, u64)> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let name = s.get(open + 1..close)?.to_string();
    // After ")": state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let f: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((name, ut + st))
}

/// The ns on CPU from a `schedstat` line (its first field).
pub fn parse_schedstat(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

/// utime + stime of a process, in seconds, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let (_, ticks) = parse_stat(&s).context("malformed stat")?;
    Ok(ticks as f64 / hz())
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

/// One thread's CPU so far.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadCpu {
    pub name: String,
    pub ns: u64,
    /// From `schedstat` (else from clock ticks).
    pub exact: bool,
}

/// Every thread of `pid` by tid.
fn thread_cpu(pid: u32) -> BTreeMap<u32, ThreadCpu> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    let ns_per_tick = 1e9 / hz();
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let Some((name, ticks)) = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        else {
            continue;
        };
        let exact = std::fs::read_to_string(e.path().join("schedstat"))
            .ok()
            .as_deref()
            .and_then(parse_schedstat);
        out.insert(
            tid,
            ThreadCpu {
                name,
                ns: exact.unwrap_or((ticks as f64 * ns_per_tick) as u64),
                exact: exact.is_some(),
            },
        );
    }
    out
}

/// What the threads used between two readings.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadWindow {
    /// ns on CPU of the threads alive at the end (those that began in the window
    /// counted from zero).
    pub total_ns: u64,
    /// Per thread name (threads of one name summed), ns.
    pub by_name: BTreeMap<String, u64>,
    /// Threads of the first reading gone by the second.
    pub exited: usize,
    /// Whether every thread's figure came from `schedstat`.
    pub exact: bool,
}

/// The threads' CPU between `before` and `after` (pure).
pub fn thread_window(
    before: &BTreeMap<u32, ThreadCpu>,
    after: &BTreeMap<u32, ThreadCpu>,
) -> ThreadWindow {
    let mut w = ThreadWindow {
        total_ns: 0,
        by_name: BTreeMap::new(),
        exited: before.keys().filter(|t| !after.contains_key(t)).count(),
        exact: true,
    };
    for (tid, t) in after {
        let was = before.get(tid).map_or(0, |b| b.ns);
        let d = t.ns.saturating_sub(was);
        w.exact &= t.exact;
        w.total_ns += d;
        *w.by_name.entry(t.name.clone()).or_insert(0) += d;
    }
    w
}

/// A process's CPU counters at one moment.
pub struct Snapshot {
    pid: u32,
    at: Instant,
    cpu: f64,
    threads: BTreeMap<u32, ThreadCpu>,
}

/// CPU over a window, as % of one core.
pub struct Measured {
    pub cpu_pct: f64,
    /// The process's own clock-tick figure (10 ms steps), for comparison.
    pub cpu_pct_ticks: f64,
    /// How `cpu_pct` was had: "schedstat", or why the ticks were used.
    pub cpu_source: &'static str,
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
        let w = thread_window(&self.threads, &later.threads);
        let pct = |ns: u64| ns as f64 / 1e9 / dt * 100.0;
        let threads = w
            .by_name
            .iter()
            .map(|(n, ns)| (n.clone(), pct(*ns)))
            .filter(|(_, p)| *p > 0.0)
            .collect();
        let ticks_pct = (later.cpu - self.cpu) / dt * 100.0;
        let (cpu_pct, cpu_source) = if w.exited > 0 {
            (ticks_pct, "clock ticks (a thread exited in the window)")
        } else if !w.exact {
            (ticks_pct, "clock ticks (no schedstat)")
        } else {
            (pct(w.total_ns), "schedstat")
        };
        Ok(Measured {
            cpu_pct,
            cpu_pct_ticks: ticks_pct,
            cpu_source,
            rss: peak_rss(self.pid)?,
            threads,
            seconds: dt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_schedstat_parse_canned_lines() {
        // A comm with a space and parentheses; utime 1234, stime 56.
        let stat =
            "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194368 900 0 0 0 1234 56 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat(stat), Some(("tokio (rt) x".to_string(), 1290)));
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parens"), None);
        assert_eq!(
            parse_schedstat("123456789012 3456 78\n"),
            Some(123_456_789_012)
        );
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
    }

    fn t(name: &str, ns: u64) -> ThreadCpu {
        ThreadCpu {
            name: name.into(),
            ns,
            exact: true,
        }
    }

    #[test]
    fn window_sums_per_name_counts_new_threads_from_zero_and_notes_exits() {
        let before = BTreeMap::from([
            (1, t("main", 1_000)),
            (2, t("collect-gpu", 5_000)),
            (3, t("collect-gpu-slow", 100)),
            (4, t("tokio-rt", 10)),
        ]);
        let mut after = BTreeMap::from([
            (1, t("main", 1_500)),
            (2, t("collect-gpu", 8_000)),
            (3, t("collect-gpu-slow", 400)),
            (4, t("tokio-rt", 20)),
            (5, t("tokio-rt", 70)),
        ]);
        let w = thread_window(&before, &after);
        assert_eq!(w.total_ns, 500 + 3_000 + 300 + 10 + 70);
        assert_eq!(w.by_name["tokio-rt"], 80);
        assert_eq!(w.by_name["collect-gpu"], 3_000);
        assert_eq!((w.exited, w.exact), (0, true));
        after.remove(&4);
        if let Some(x) = after.get_mut(&5) {
            x.exact = false;
        }
        let w = thread_window(&before, &after);
        assert_eq!((w.exited, w.exact), (1, false));
    }

    /// Thread CPU time in ns (CLOCK_THREAD_CPUTIME_ID).
    fn own_thread_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    /// This test's own process: 200 ms of this thread's CPU (however long the
    /// shared machine makes it take) show in the window's total (less at most two
    /// 10 ms clock ticks where the ticks had to be used).
    #[test]
    fn own_threads_read_and_a_busy_loop_counts() {
        let pid = std::process::id();
        let s = Snapshot::take(pid).unwrap();
        let c0 = own_thread_ns();
        let mut x = 0u64;
        while own_thread_ns() - c0 < 200_000_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let m = s.since().unwrap();
        let cpu_s = m.cpu_pct / 100.0 * m.seconds;
        assert!(cpu_s >= 0.18, "{cpu_s} s via {}", m.cpu_source);
        let threads_s = m.threads.iter().map(|t| t.1).sum::<f64>() / 100.0 * m.seconds;
        assert!(threads_s >= 0.18, "{threads_s} s");
        assert!(m.rss > 0);
    }
}
