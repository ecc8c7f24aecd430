//! The agent's own processes on a GPU: a fabric probe's NIXL or UCX driver that the
//! agent started holds GPU memory like an engine does, but it is neither a cold
//! start nor a reason to sample at the burst cadence. A process is the agent's own
//! when its parent chain (`/proc/PID/stat`) reaches the agent's PID. The chain walk
//! is pure ([`descends_from`]); the `/proc` read ([`proc_ppid`]) is the only I/O, and
//! each PID is classified once ([`OwnProcesses`]).

use std::collections::HashMap;
use std::path::Path;

/// Longest parent chain followed (a PID loop or a very deep tree stops there).
const MAX_DEPTH: usize = 64;
/// PIDs remembered at most; the cache is cleared when it would grow past this.
const MAX_CACHED: usize = 4096;

/// Whether `pid`'s parent chain, as `ppid_of` gives it, reaches `ancestor` (the
/// process itself does not count). Stops at PID 1, at a PID without a parent, or
/// after [`MAX_DEPTH`] steps.
pub fn descends_from(pid: u32, ancestor: u32, ppid_of: impl Fn(u32) -> Option<u32>) -> bool {
    let mut p = pid;
    for _ in 0..MAX_DEPTH {
        match ppid_of(p) {
            Some(q) if q == ancestor => return true,
            Some(q) if q > 1 && q != p => p = q,
            _ => return false,
        }
    }
    false
}

/// The parent PID in the text of `/proc/PID/stat`: the field after the state, which
/// follows the last `)` (the command name between the parentheses may hold spaces
/// and parentheses itself).
pub fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    f.next()?; // state
    f.next()?.parse().ok()
}

/// The parent PID of `pid` from `<proc_root>/<pid>/stat`; None when the process is
/// gone or the file is unreadable.
pub fn proc_ppid(proc_root: &Path, pid: u32) -> Option<u32> {
    use std::io::Read;
    let mut buf = [0u8; 512];
    let mut f = std::fs::File::open(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let n = f.read(&mut buf).ok()?;
    parse_ppid(std::str::from_utf8(&buf[..n]).ok()?)
}

/// Classifies PIDs as this agent's descendants or not, once each.
#[derive(Debug)]
pub struct OwnProcesses {
    me: u32,
    known: HashMap<u32, bool>,
}

impl OwnProcesses {
    /// For the process `me` (the agent: `std::process::id()`).
    pub fn new(me: u32) -> Self {
        OwnProcesses {
            me,
            known: HashMap::new(),
        }
    }

    /// Whether `pid` is `me`'s descendant, reading parents with `ppid_of` the first
    /// time `pid` is asked about.
    pub fn is_own(&mut self, pid: u32, ppid_of: impl Fn(u32) -> Option<u32>) -> bool {
        if let Some(&own) = self.known.get(&pid) {
            return own;
        }
        if self.known.len() >= MAX_CACHED {
            self.known.clear();
        }
        let own = descends_from(pid, self.me, ppid_of);
        self.known.insert(pid, own);
        own
    }

    /// Forgets PIDs not in `alive` (a PID may be reused by another process).
    pub fn retain(&mut self, alive: impl Fn(u32) -> bool) {
        self.known.retain(|pid, _| alive(*pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(pairs: &[(u32, u32)]) -> impl Fn(u32) -> Option<u32> + '_ {
        move |pid| pairs.iter().find(|p| p.0 == pid).map(|p| p.1)
    }

    #[test]
    fn children_and_grandchildren_descend_others_do_not() {
        // 100 is the agent; 200 its driver; 300 the driver's child; 400 an engine.
        let t = [(200, 100), (300, 200), (100, 1), (400, 1), (500, 400)];
        assert!(descends_from(200, 100, tree(&t)));
        assert!(descends_from(300, 100, tree(&t)));
        assert!(!descends_from(400, 100, tree(&t)));
        assert!(!descends_from(500, 100, tree(&t)));
        assert!(
            !descends_from(100, 100, tree(&t)),
            "itself is not its own child"
        );
        assert!(!descends_from(999, 100, tree(&t)), "gone: not own");
    }

    #[test]
    fn a_parent_loop_ends() {
        let t = [(7, 8), (8, 7)];
        assert!(!descends_from(7, 100, tree(&t)));
    }

    #[test]
    fn ppid_after_a_name_with_spaces_and_parentheses() {
        assert_eq!(
            parse_ppid("4242 (python3) S 4100 4242 4100 0 -1 4194304 120"),
            Some(4100)
        );
        assert_eq!(
            parse_ppid("17 (a (b) c) R 3 17 17 0 -1 0"),
            Some(3),
            "the last ')' ends the name"
        );
        assert_eq!(parse_ppid("17 (x"), None);
        assert_eq!(parse_ppid("17 (x) S"), None);
        assert_eq!(parse_ppid("17 (x) S -"), None);
    }

    #[test]
    fn parse_never_panics_on_random_bytes() {
        let mut rng = servescope_proto::test_support::Rng(7);
        for _ in 0..2000 {
            let n = rng.index(64);
            let bytes: Vec<u8> = (0..n).map(|_| b" ()S0123456789x"[rng.index(15)]).collect();
            let _ = parse_ppid(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn each_pid_is_read_once_and_the_cache_forgets_the_dead() {
        use std::cell::Cell;
        let reads = Cell::new(0);
        let t = [(200, 100), (400, 1)];
        let ppid = |pid| {
            reads.set(reads.get() + 1);
            tree(&t)(pid)
        };
        let mut own = OwnProcesses::new(100);
        assert!(own.is_own(200, ppid));
        assert!(!own.is_own(400, ppid));
        let after_first = reads.get();
        assert!(own.is_own(200, ppid));
        assert!(!own.is_own(400, ppid));
        assert_eq!(reads.get(), after_first, "cached");
        own.retain(|pid| pid == 400);
        assert!(own.is_own(200, ppid));
        assert!(
            reads.get() > after_first,
            "200 was forgotten and read again"
        );
    }

    #[test]
    fn this_test_process_is_its_own_childs_ancestor() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let root = Path::new("/proc");
        let own = descends_from(child.id(), me, |p| proc_ppid(root, p));
        let _ = child.kill();
        let _ = child.wait();
        assert!(own);
        assert!(!descends_from(1, me, |p| proc_ppid(root, p)));
    }
}
