//! Which UCX / libfabric an engine uses on this node: named explicitly, found in a
//! Python environment's NIXL wheel (`nixl_cu13.libs/libucp-<hash>.so.0.0.0`), or
//! mapped by a running process (`/proc/PID/maps`); and which of the UCX builds on
//! this node has a CUDA transport (`ucx/libuct_cuda*.so` beside its libucp). The
//! parsing and the CUDA check are pure; the search is bounded.

use std::path::{Path, PathBuf};

use servescope_proto::v1::ProbeTransport;

use crate::error::FabricError;

/// Directories of a NIXL wheel that hold its bundled libraries, newest first.
pub const WHEEL_LIB_DIRS: &[&str] = &["nixl_cu13.libs", "nixl_cu12.libs", "nixl.libs"];
/// Processes looked at, directory entries read per directory.
const MAX_PROCS: usize = 4096;
const MAX_DIR_ENTRIES: usize = 4096;
/// Candidates reported.
const MAX_CANDIDATES: usize = 8;

/// A fabric library kind found in a maps file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibKind {
    Ucp,
    Libfabric,
}

/// Distinct (kind, path) of libucp / libfabric objects in a `/proc/PID/maps` text,
/// in order of first appearance.
pub fn parse_maps(maps: &str) -> Vec<(LibKind, String)> {
    let mut out: Vec<(LibKind, String)> = Vec::new();
    for line in maps.lines().take(1 << 16) {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let Some(name) = path.rsplit('/').next() else {
            continue;
        };
        let kind = if name.starts_with("libucp.so") || name.starts_with("libucp-") {
            LibKind::Ucp
        } else if name.starts_with("libfabric.so") || name.starts_with("libfabric-") {
            LibKind::Libfabric
        } else {
            continue;
        };
        if path.starts_with('/') && !out.iter().any(|(_, p)| p == path) && out.len() < 64 {
            out.push((kind, path.to_string()));
        }
    }
    out
}

/// Whether a UCX modules directory listing (`<libdir>/ucx/`) holds a CUDA transport.
pub fn has_cuda_transport<S: AsRef<str>>(module_names: &[S]) -> bool {
    module_names.iter().any(|n| {
        let n = n.as_ref();
        n.starts_with("libuct_cuda") && n.contains(".so")
    })
}

fn list_dir(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .take(MAX_DIR_ENTRIES)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the UCX whose libucp is at `libucp` has a CUDA transport module.
pub fn ucx_has_cuda(libucp: &Path) -> bool {
    libucp
        .parent()
        .is_some_and(|d| has_cuda_transport(&list_dir(&d.join("ucx"))))
}

/// The bundled libucp of a NIXL wheel under one site-packages directory.
pub fn wheel_ucx(site_packages: &Path) -> Option<PathBuf> {
    WHEEL_LIB_DIRS.iter().find_map(|d| {
        let dir = site_packages.join(d);
        let mut names = list_dir(&dir);
        names.sort();
        names
            .into_iter()
            .find(|n| n.starts_with("libucp") && n.contains(".so"))
            .map(|n| dir.join(n))
    })
}

/// `site-packages` directories of a Python prefix (`<prefix>/lib/python3*/site-packages`
/// and `dist-packages`).
pub fn site_dirs(prefix: &Path) -> Vec<PathBuf> {
    let lib = prefix.join("lib");
    let mut out = Vec::new();
    for n in list_dir(&lib) {
        if n.starts_with("python3") {
            for s in ["site-packages", "dist-packages"] {
                out.push(lib.join(&n).join(s));
            }
        }
    }
    out.sort();
    out
}

/// The NIXL wheel's libucp in a Python environment (`venv` is its prefix).
pub fn venv_ucx(venv: &Path) -> Result<PathBuf, FabricError> {
    site_dirs(venv)
        .iter()
        .find_map(|s| wheel_ucx(s))
        .ok_or_else(|| {
            FabricError::Unsupported(format!(
                "no NIXL wheel with a bundled UCX under {}/lib/python3*/site-packages ({})",
                venv.display(),
                WHEEL_LIB_DIRS.join(", ")
            ))
        })
}

/// The libraries of `kind` a process has mapped.
pub fn pid_libs(proc_root: &Path, pid: u32, kind: LibKind) -> Result<Vec<String>, FabricError> {
    let p = proc_root.join(pid.to_string()).join("maps");
    let text =
        std::fs::read(&p).map_err(|e| FabricError::Unsupported(format!("{}: {e}", p.display())))?;
    let text = String::from_utf8_lossy(&text[..text.len().min(16 << 20)]).into_owned();
    Ok(parse_maps(&text)
        .into_iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, p)| p)
        .collect())
}

fn like_pid(pid: u32, kind: LibKind, what: &str) -> Result<String, FabricError> {
    pid_libs(Path::new("/proc"), pid, kind)?
        .into_iter()
        .next()
        .ok_or_else(|| FabricError::Unsupported(format!("process {pid} has no {what} mapped")))
}

/// The libucp a probe asked for: explicit, from an engine venv, or like a process.
pub fn resolve_ucx(t: &ProbeTransport) -> Result<Option<String>, FabricError> {
    if !t.ucx_lib.is_empty() {
        return Ok(Some(t.ucx_lib.clone()));
    }
    if !t.engine_venv.is_empty() {
        return venv_ucx(Path::new(&t.engine_venv)).map(|p| Some(p.to_string_lossy().into()));
    }
    if t.like_pid != 0 {
        return like_pid(t.like_pid, LibKind::Ucp, "libucp").map(Some);
    }
    Ok(None)
}

/// The libfabric a probe asked for: explicit or like a process.
pub fn resolve_libfabric(t: &ProbeTransport) -> Result<Option<String>, FabricError> {
    if !t.fabric_lib.is_empty() {
        return Ok(Some(t.fabric_lib.clone()));
    }
    if t.like_pid != 0 {
        return like_pid(t.like_pid, LibKind::Libfabric, "libfabric").map(Some);
    }
    Ok(None)
}

/// UCX builds on this node that have a CUDA transport: those mapped by running
/// Python/vLLM processes, and NIXL wheels in the site-packages of those processes'
/// environments and of the usual Python prefixes. Bounded.
pub fn cuda_capable_ucx(proc_root: &Path) -> Vec<String> {
    let mut libs: Vec<PathBuf> = Vec::new();
    let mut prefixes: Vec<PathBuf> = vec![PathBuf::from("/usr"), PathBuf::from("/usr/local")];
    prefixes.extend(
        list_dir(Path::new("/opt"))
            .iter()
            .map(|n| Path::new("/opt").join(n)),
    );
    for n in list_dir(proc_root).into_iter().take(MAX_PROCS) {
        if n.parse::<u32>().is_err() {
            continue;
        }
        let dir = proc_root.join(&n);
        let Ok(exe) = std::fs::read_link(dir.join("exe")) else {
            continue;
        };
        let name = exe.file_name().map(|s| s.to_string_lossy().into_owned());
        if !name.is_some_and(|s| s.starts_with("python") || s.starts_with("vllm")) {
            continue;
        }
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            if !prefixes.iter().any(|p| p == prefix) && prefixes.len() < 64 {
                prefixes.push(prefix.to_path_buf());
            }
        }
        if let Ok(m) = std::fs::read(dir.join("maps")) {
            for (_, p) in parse_maps(&String::from_utf8_lossy(&m)) {
                libs.push(PathBuf::from(p));
            }
        }
    }
    for p in &prefixes {
        libs.extend(site_dirs(p).iter().filter_map(|s| wheel_ucx(s)));
    }
    let mut out: Vec<String> = Vec::new();
    for l in libs {
        let s = l.to_string_lossy().into_owned();
        let is_ucp = l
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("libucp"));
        if is_ucp && !out.contains(&s) && out.len() < MAX_CANDIDATES && ucx_has_cuda(&l) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
#[path = "engine_libs_tests.rs"]
mod tests;
