//! One log line taken apart: ANSI colours removed, Ray actor prefixes
//! (`(ServeReplica:default:LLMServer:llama pid=1) (EngineCore_DP0 pid=2) …`), the
//! Python logger's `LEVEL MM-DD HH:MM:SS[.fff] [file.py:N]` header and Ray's
//! `[repeated Nx across cluster]` suffix.

/// A Ray / vLLM process prefix: `(Name pid=N)`, `(pid=N)`, `(VllmWorker rank=2 pid=N)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub name: String,
    pub pid: u64,
    /// `rank=N` in the prefix, or the N of a `…_TP<N>` / `…_DP<N>` worker name.
    pub rank: Option<String>,
    /// `ip=…` of multi-node Ray prefixes (`(Name pid=N, ip=10.0.0.2)`).
    pub ip: Option<String>,
}

impl Proc {
    pub fn describe(&self) -> String {
        if self.name.is_empty() {
            format!("pid={}", self.pid)
        } else {
            format!("{} pid={}", self.name, self.pid)
        }
    }
}

/// A line's parts. `message` excludes the logger header and the repeat suffix.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// Prefixes outermost first; the last one is the process that wrote the line.
    pub procs: Vec<Proc>,
    pub level: Option<String>,
    /// (month, day, hour, minute, second, nanos)
    pub stamp: Option<Stamp>,
    pub message: String,
    /// N of `[repeated Nx across cluster]`.
    pub repeated: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl Stamp {
    /// ns since the epoch for `year`, with the log's clock at `utc_offset_s` from UTC.
    pub fn to_ns(self, year: i32, utc_offset_s: i32) -> i64 {
        let days = days_from_civil(i64::from(year), self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(utc_offset_s);
        secs.saturating_mul(1_000_000_000)
            .saturating_add(i64::from(self.nanos))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Removes ANSI escape sequences (`ESC [ … letter`, and a lone ESC).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out
}

fn parse_proc(inner: &str) -> Option<Proc> {
    let i = inner.rfind("pid=")?;
    let after = &inner[i + 4..];
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let pid: u64 = after[..digits].parse().ok()?;
    let tail = after[digits..].trim();
    let ip = match tail.strip_prefix(',').map(str::trim) {
        Some(t) => Some(t.strip_prefix("ip=")?.to_string()),
        None if tail.is_empty() => None,
        None => return None,
    };
    let head = inner[..i].trim();
    let (name, rank) = match head.find(" rank=") {
        Some(r) => (
            head[..r].trim().to_string(),
            Some(head[r + 6..].trim().to_string()),
        ),
        None => (head.to_string(), None),
    };
    let rank = rank.or_else(|| {
        let tail = name.rsplit('_').next()?;
        let num = tail
            .strip_prefix("TP")
            .or_else(|| tail.strip_prefix("Worker"))?;
        (!num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())).then(|| num.to_string())
    });
    Some(Proc {
        name,
        pid,
        rank,
        ip,
    })
}

fn two(s: &[u8]) -> Option<u32> {
    match s {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

/// `MM-DD HH:MM:SS[.fff]` at the start of `s`; returns the stamp and its length.
fn parse_stamp(s: &str) -> Option<(Stamp, usize)> {
    let b = s.as_bytes();
    if b.len() < 14 || b[2] != b'-' || b[5] != b' ' || b[8] != b':' || b[11] != b':' {
        return None;
    }
    let (month, day) = (two(&b[0..2])?, two(&b[3..5])?);
    let (hour, minute, second) = (two(&b[6..8])?, two(&b[9..11])?, two(&b[12..14])?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut len = 14;
    let mut nanos = 0u32;
    if b.get(14) == Some(&b'.') || b.get(14) == Some(&b',') {
        let digits: Vec<u8> = b[15..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .take(9)
            .copied()
            .collect();
        if !digits.is_empty() {
            let mut v = 0u32;
            for d in &digits {
                v = v * 10 + u32::from(d - b'0');
            }
            nanos = v * 10u32.pow(9 - digits.len() as u32);
            len = 15 + b[15..].iter().take_while(|c| c.is_ascii_digit()).count();
        }
    }
    let stamp = Stamp {
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    Some((stamp, len))
}

const LEVELS: [&str; 6] = ["DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"];

/// Takes a (lossily decoded) line apart. Never fails: a line with no recognisable
/// structure is all message.
pub fn parse(raw: &str) -> Parsed {
    let clean = strip_ansi(raw.trim_end_matches(['\r', '\n']));
    let mut rest = clean.as_str();
    let mut procs = Vec::new();
    loop {
        let t = rest.trim_start();
        if !t.starts_with('(') {
            break;
        }
        let Some(close) = t.find(')') else { break };
        match parse_proc(&t[1..close]) {
            Some(p) if close < 200 => {
                procs.push(p);
                rest = &t[close + 1..];
            }
            _ => break,
        }
    }
    let mut body = rest.trim_start();
    let mut level = None;
    let mut stamp = None;
    if let Some(l) = LEVELS
        .iter()
        .find(|l| body.starts_with(*l) && body.as_bytes().get(l.len()) == Some(&b' '))
    {
        let after = body[l.len()..].trim_start();
        if let Some((s, n)) = parse_stamp(after) {
            level = Some((*l).to_string());
            stamp = Some(s);
            body = after[n..].trim_start();
            // `[file.py:N]`
            if body.starts_with('[') {
                if let Some(e) = body.find("] ") {
                    if body[1..e].contains(':') && !body[1..e].contains(' ') {
                        body = &body[e + 2..];
                    }
                }
            }
        }
    }
    let (message, repeated) = match body.find(" [repeated ") {
        Some(i) => {
            let tail = &body[i + 11..];
            let n = tail
                .split_once("x across cluster]")
                .and_then(|(n, _)| n.parse::<u32>().ok());
            if n.is_some() {
                (body[..i].trim_end().to_string(), n)
            } else {
                (body.to_string(), None)
            }
        }
        None => (body.to_string(), None),
    };
    Parsed {
        procs,
        level,
        stamp,
        message,
        repeated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_line_parts() {
        let l = "\u{1b}[36m(ServeReplica:default:LLMServer:llama pid=126216)\u{1b}[0m \u{1b}[1;36m(EngineCore_DP0 pid=126656)\u{1b}[0;0m \u{1b}[36m(RayWorkerWrapper pid=126780)\u{1b}[0m INFO 10-15 11:58:03 [monitor.py:33] torch.compile takes 60.79 s in total\u{1b}[32m [repeated 4x across cluster]\u{1b}[0m";
        let p = parse(l);
        assert_eq!(p.procs.len(), 3);
        assert_eq!(p.procs[2].name, "RayWorkerWrapper");
        assert_eq!(p.procs[2].pid, 126780);
        assert_eq!(p.level.as_deref(), Some("INFO"));
        assert_eq!(
            p.stamp
                .map(|s| (s.month, s.day, s.hour, s.minute, s.second)),
            Some((10, 15, 11, 58, 3))
        );
        assert_eq!(p.message, "torch.compile takes 60.79 s in total");
        assert_eq!(p.repeated, Some(4));

        let p = parse("(VllmWorker rank=3 pid=77) INFO 01-02 03:04:05.250 [x.py:1] hi");
        assert_eq!(p.procs[0].rank.as_deref(), Some("3"));
        assert_eq!(p.stamp.map(|s| s.nanos), Some(250_000_000));
        let p = parse("(Worker_TP2 pid=9) [RunAI Streamer] Overall time");
        assert_eq!(p.procs[0].rank.as_deref(), Some("2"));
        assert!(p.stamp.is_none());
        assert_eq!(p.message, "[RunAI Streamer] Overall time");
        let p = parse("(RayWorkerWrapper pid=5, ip=10.0.0.2) INFO 10-15 11:52:11 [a.py:1] x");
        assert_eq!(
            (p.procs[0].pid, p.procs[0].ip.as_deref()),
            (5, Some("10.0.0.2"))
        );
        // Garbage never panics.
        for g in [
            "(",
            "((((pid=",
            "INFO 99-99 99:99:99 x",
            "\u{1b}",
            "(pid=1)INFO 10-15 1",
            "é(pid=é)",
        ] {
            let _ = parse(g);
        }
    }

    #[test]
    fn startup_days_from_civil() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let s = Stamp {
            month: 10,
            day: 15,
            hour: 11,
            minute: 52,
            second: 11,
            nanos: 0,
        };
        // 2025-10-15 11:52:11 at UTC-7 is 18:52:11 UTC.
        assert_eq!(
            crate::text::utc(s.to_ns(2025, -7 * 3600)),
            "2025-10-15 18:52:11"
        );
    }
}
