//! Discovery: serving processes' stdout/stderr files and `*` globs.

use std::collections::HashMap;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};

use super::{MAX_DIR_ENTRIES, MAX_FILES};
use crate::probe::preflight::is_serving;

/// `*`-only wildcard match of one path component.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if name.len() < first.len() + last.len() || !name.starts_with(first) || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Regular files matching a glob whose `*`s are in the last component. The
/// directory part is taken literally (symlinks such as `session_latest` resolve).
pub fn expand_glob(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    if !name.contains('*') {
        return if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .take(MAX_DIR_ENTRIES)
        .flatten()
        .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Discoveries a process's verdict (serving or not) is trusted before its
/// command line is read again: a process may exec or retitle itself into a serving
/// one (`exec vllm serve`, Ray's `ray::ServeReplica` titles).
pub const RECHECK_EVERY: u32 = 10;

/// Serving-or-not verdicts per process, so that a discovery reads the command line
/// of new processes only (and of each other one every [`RECHECK_EVERY`] rounds),
/// not of every process on the host every second.
#[derive(Debug, Default)]
pub struct ProcCache {
    /// (pid, inode of `/proc/<pid>`: a reused pid gets a new one) → (serving,
    /// round of the verdict, round last listed).
    verdicts: HashMap<(u32, u64), (bool, u32, u32)>,
    round: u32,
    /// Serving processes first seen in the last round, when it was not the first
    /// (those found in the first round were running before the agent).
    pub new_serving: Vec<u32>,
    /// Command lines read so far (tests check the cache saves reads).
    pub cmdline_reads: u64,
}

fn read_cmdline(dir: &Path) -> Option<String> {
    let raw = std::fs::read(dir.join("cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw[..raw.len().min(4096)])
            .replace('\0', " ")
            .chars()
            .take(1024)
            .collect(),
    )
}

/// stdout/stderr files of the serving processes under `proc_root`.
pub fn serving_logs(proc_root: &Path) -> Vec<PathBuf> {
    serving_logs_cached(proc_root, &mut ProcCache::default())
}

/// [`serving_logs`] with verdicts kept in `cache` between calls.
pub fn serving_logs_cached(proc_root: &Path, cache: &mut ProcCache) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    cache.round = cache.round.wrapping_add(1);
    let round = cache.round;
    cache.new_serving.clear();
    let mut out = Vec::new();
    for e in rd.take(MAX_DIR_ENTRIES).flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let key = (pid, e.ino());
        let serving = match cache.verdicts.get_mut(&key) {
            Some((v, at, listed)) if round.wrapping_sub(*at) < RECHECK_EVERY => {
                *listed = round;
                *v
            }
            _ => {
                cache.cmdline_reads += 1;
                let Some(cmdline) = read_cmdline(&e.path()) else {
                    continue;
                };
                let v = is_serving(&cmdline);
                let before = cache.verdicts.insert(key, (v, round, round));
                if v && round > 1 && !before.is_some_and(|b| b.0) {
                    cache.new_serving.push(pid);
                }
                v
            }
        };
        if !serving {
            continue;
        }
        for fd in ["1", "2"] {
            if let Ok(target) = std::fs::read_link(e.path().join("fd").join(fd)) {
                if target.is_absolute() && target.is_file() && !out.contains(&target) {
                    out.push(target);
                }
            }
        }
        if out.len() >= MAX_FILES {
            break;
        }
    }
    // Processes gone since the last listing.
    cache.verdicts.retain(|_, (_, _, listed)| *listed == round);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_cached_and_rechecked() {
        let root = tempfile::tempdir().unwrap();
        let log = root.path().join("serve.log");
        std::fs::write(&log, "").unwrap();
        let mk = |pid: &str, cmd: &str| {
            let d = root.path().join(pid);
            std::fs::create_dir_all(d.join("fd")).unwrap();
            std::fs::write(d.join("cmdline"), cmd).unwrap();
            d
        };
        let serve = mk("100", "vllm\0serve\0meta-llama/Llama-3.1-8B\0");
        std::os::unix::fs::symlink(&log, serve.join("fd").join("1")).unwrap();
        mk("200", "sleep\0x\0");
        let mut cache = ProcCache::default();
        assert_eq!(
            serving_logs_cached(root.path(), &mut cache),
            vec![log.clone()]
        );
        assert_eq!(cache.cmdline_reads, 2);
        assert!(
            cache.new_serving.is_empty(),
            "running before the first round"
        );
        for _ in 1..RECHECK_EVERY {
            assert_eq!(
                serving_logs_cached(root.path(), &mut cache),
                vec![log.clone()]
            );
        }
        assert_eq!(cache.cmdline_reads, 2, "verdicts reused");
        // The sleeper retitles itself into a server: seen at the next recheck.
        std::fs::write(root.path().join("200").join("cmdline"), "vllm\0serve\0x\0").unwrap();
        let log2 = root.path().join("serve2.log");
        std::fs::write(&log2, "").unwrap();
        std::os::unix::fs::symlink(&log2, root.path().join("200").join("fd").join("2")).unwrap();
        let found = serving_logs_cached(root.path(), &mut cache);
        assert_eq!(cache.cmdline_reads, 4);
        assert!(found.contains(&log) && found.contains(&log2), "{found:?}");
        assert_eq!(cache.new_serving, vec![200], "newly serving");
        serving_logs_cached(root.path(), &mut cache);
        assert!(cache.new_serving.is_empty());
        // A process that went away is forgotten.
        std::fs::remove_dir_all(root.path().join("100")).unwrap();
        serving_logs_cached(root.path(), &mut cache);
        assert_eq!(cache.verdicts.len(), 1);
    }

    #[test]
    fn globs() {
        assert!(glob_match("worker-*.out", "worker-abc-01.out"));
        assert!(glob_match("worker-*.out", "worker-.out"));
        assert!(!glob_match("worker-*.out", "worker-abc.err"));
        assert!(!glob_match("worker-*.out", "raylet.out"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("a*b*c", "a-c"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("plain.log", "plain.log"));
    }
}
