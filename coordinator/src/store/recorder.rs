//! Which process is recording a run, and whether it still lives: its host, boot,
//! pid and start time (so a reused pid, or a reboot, is not taken for the recorder).
//! Read from `/proc`; where there is none, liveness is unknown.

use std::path::Path;

/// A recording process's identity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recorder {
    pub host: String,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`), empty if unknown.
    pub boot: String,
    pub pid: u32,
    /// Start time of the process in clock ticks after boot (`/proc/PID/stat`
    /// field 22); 0 if unknown.
    pub start: u64,
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn host() -> String {
    read_trimmed(Path::new("/proc/sys/kernel/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

fn boot() -> String {
    read_trimmed(Path::new("/proc/sys/kernel/random/boot_id")).unwrap_or_default()
}

/// The start time (field 22) of a `/proc/PID/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces or parentheses itself, so fields are
/// counted after its last `)`.
pub fn stat_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn start_of(pid: u32) -> Option<u64> {
    stat_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

impl Recorder {
    /// This process.
    pub fn this_process() -> Recorder {
        let pid = std::process::id();
        Recorder {
            host: host(),
            boot: boot(),
            pid,
            start: start_of(pid).unwrap_or(0),
        }
    }

    /// Whether this recorder still runs: `Some(false)` when it is certainly gone
    /// (same host, and another boot, or no such process, or a process started at
    /// another time under its pid); `None` when this machine cannot tell (another
    /// host, or no `/proc`).
    pub fn alive(&self) -> Option<bool> {
        let me = Recorder::this_process();
        if me.host.is_empty() || me.host != self.host {
            return None;
        }
        if !me.boot.is_empty() && !self.boot.is_empty() && me.boot != self.boot {
            return Some(false);
        }
        if !Path::new("/proc/self/stat").exists() {
            return None;
        }
        match start_of(self.pid) {
            None => Some(false),
            Some(s) => Some(self.start == 0 || s == self.start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_counted_after_the_command_name() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 2 0 0 20 0 3 0 987654 1000 200 18446744073709551615";
        assert_eq!(stat_start_time(line), Some(987654));
        assert_eq!(stat_start_time("4242 (short) S 1"), None);
        assert_eq!(stat_start_time("no parenthesis"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_alive_and_a_dead_child_is_not() {
        let me = Recorder::this_process();
        assert!(me.start > 0 && !me.host.is_empty());
        assert_eq!(me.alive(), Some(true));
        let reused = Recorder {
            start: me.start + 1,
            ..me.clone()
        };
        assert_eq!(reused.alive(), Some(false), "same pid, other start time");
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        let gone = Recorder { pid, ..me.clone() };
        assert_eq!(gone.alive(), Some(false));
        let other_host = Recorder {
            host: format!("{}-elsewhere", me.host),
            ..me.clone()
        };
        assert_eq!(other_host.alive(), None);
        let rebooted = Recorder {
            boot: "another-boot".into(),
            ..me
        };
        assert_eq!(rebooted.alive(), Some(false));
    }
}
