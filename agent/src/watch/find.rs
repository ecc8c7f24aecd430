//! Discovery: serving processes' stdout/stderr files and `*` globs.

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

/// stdout/stderr files of the serving processes under `proc_root`.
pub fn serving_logs(proc_root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.take(MAX_DIR_ENTRIES).flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline: String = String::from_utf8_lossy(&raw[..raw.len().min(4096)])
            .replace('\0', " ")
            .chars()
            .take(1024)
            .collect();
        if !is_serving(&cmdline) {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
