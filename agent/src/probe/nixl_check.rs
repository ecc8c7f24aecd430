//! NIXL facts for `fabric check`: for each distinct Python the serving processes run
//! (python3 on PATH when none does), what NIXL offers there (the driver's `hello`,
//! bounded in time), the UCX transport modules beside the UCX it loads, and NIXL's
//! telemetry as the processes' environment configures it (its buffers read only when
//! asked: see [`super::nixl_telemetry`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use servescope_fabric::nixl::{self, python, Python};
use servescope_proto::v1::{NixlNodeCheck, ServingProcess};

use super::nixl_telemetry::{exports_to_buffer, read_into, telemetry_on};

/// Longest a `hello` may take per Python.
const HELLO_WAIT: Duration = Duration::from_secs(20);
/// Distinct Pythons asked at most.
const MAX_PYTHONS: usize = 4;

/// Checks NIXL once per distinct Python of `procs` (our own probe drivers left out);
/// `read_telemetry`: also read (and so consume) their NIXL telemetry buffers.
pub fn collect(
    procs: &[ServingProcess],
    proc_root: &Path,
    read_telemetry: bool,
) -> Vec<NixlNodeCheck> {
    let mut by_python: BTreeMap<PathBuf, Vec<&ServingProcess>> = BTreeMap::new();
    for p in procs
        .iter()
        .filter(|p| !p.cmdline.contains("servescope-nixl-"))
    {
        if let Ok(Some(py)) = python::python_of_pid(proc_root, p.pid) {
            by_python.entry(py).or_default().push(p);
        }
    }
    let mut asks: Vec<(Python, Vec<&ServingProcess>)> = by_python
        .into_iter()
        .take(MAX_PYTHONS)
        .map(|(path, ps)| {
            let how = format!("the Python of process {}", ps[0].pid);
            (Python { path, how }, ps)
        })
        .collect();
    if asks.is_empty() {
        if let Some(path) = python::python3_on_path() {
            let how = "python3 on PATH (no serving process runs a Python)".to_string();
            asks.push((Python { path, how }, Vec::new()));
        }
    }
    asks.into_iter()
        .map(|(py, ps)| check_one(&py, &ps, read_telemetry))
        .collect()
}

fn check_one(py: &Python, procs: &[&ServingProcess], read_telemetry: bool) -> NixlNodeCheck {
    let mut c = NixlNodeCheck {
        python: format!("{} ({})", py.path.display(), py.how),
        pids: procs.iter().map(|p| p.pid).collect(),
        telemetry: telemetry(procs),
        ..Default::default()
    };
    match nixl::node_hello(py, HELLO_WAIT) {
        Ok(h) => {
            c.available = true;
            c.version = h.describe();
            c.backends = h.backends.iter().map(|(n, _)| n.clone()).collect();
            c.backend_errors = h
                .backend_errors
                .iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect();
            c.ucx_modules = ucx_modules(Path::new(&h.ucx_path));
            c.ucx_path = h.ucx_path;
            c.ucx_version = h.ucx_version;
        }
        Err(e) => c.detail = e.to_string(),
    }
    if read_telemetry {
        read_into(&mut c, &py.path, procs);
    }
    c
}

/// UCX transport modules (`ucx/libuct_<name>.so`) beside a libucp file.
pub fn ucx_modules(libucp: &Path) -> Vec<String> {
    let Some(dir) = libucp.parent().map(|d| d.join("ucx")) else {
        return Vec::new();
    };
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let rest = n.strip_prefix("libuct_")?;
                    Some(rest.split(".so").next().unwrap_or(rest).to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// NIXL telemetry as the processes configure it: off, or the exporter and, for the
/// shared-memory buffer exporter, the files in NIXL_TELEMETRY_DIR.
pub fn telemetry(procs: &[&ServingProcess]) -> String {
    let Some(p) = procs.iter().find(|p| telemetry_on(p)) else {
        return "off (NIXL_TELEMETRY_ENABLE not set in any serving process)".into();
    };
    let vars: Vec<String> = p
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("NIXL_TELEMETRY_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut s = format!("on in pid {}: {}", p.pid, vars.join(" "));
    if exports_to_buffer(p) {
        match p.env.get("NIXL_TELEMETRY_DIR") {
            None => s.push_str("; no NIXL_TELEMETRY_DIR: nothing exported to files"),
            Some(d) => match std::fs::read_dir(d) {
                Ok(rd) => {
                    let files: Vec<String> = rd
                        .flatten()
                        .take(32)
                        .map(|e| {
                            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                            format!("{} ({len} B)", e.file_name().to_string_lossy())
                        })
                        .collect();
                    if files.is_empty() {
                        s.push_str(&format!("; {d} holds no telemetry files yet"));
                    } else {
                        s.push_str(&format!("; buffers in {d}: {}", files.join(", ")));
                    }
                }
                Err(e) => s.push_str(&format!("; {d}: {e}")),
            },
        }
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A serving process with this environment (shared with the telemetry tests).
    pub(crate) fn proc_with(env: &[(&str, &str)]) -> ServingProcess {
        ServingProcess {
            pid: 7,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn telemetry_off_on_and_its_files() {
        let off = proc_with(&[("UCX_TLS", "all")]);
        assert!(telemetry(&[&off]).starts_with("off"));
        let d = tempfile::tempdir().expect("dir");
        std::fs::write(d.path().join("agent-0"), [0u8; 64]).expect("file");
        let dir = d.path().to_string_lossy().into_owned();
        let on = proc_with(&[("NIXL_TELEMETRY_ENABLE", "y"), ("NIXL_TELEMETRY_DIR", &dir)]);
        let t = telemetry(&[&off, &on]);
        assert!(t.starts_with("on in pid 7"), "{t}");
        assert!(t.contains("agent-0 (64 B)"), "{t}");
        let prom = proc_with(&[
            ("NIXL_TELEMETRY_ENABLE", "1"),
            ("NIXL_TELEMETRY_EXPORTER", "prometheus"),
        ]);
        assert!(telemetry(&[&prom]).contains("NIXL_TELEMETRY_EXPORTER=prometheus"));
    }

    #[test]
    fn ucx_modules_beside_libucp() {
        let d = tempfile::tempdir().expect("dir");
        std::fs::create_dir(d.path().join("ucx")).expect("ucx");
        for f in [
            "libuct_cuda.so.0",
            "libuct_ib_efa.so.0",
            "libucm_cuda.so.0",
            "libuct_cma.so",
        ] {
            std::fs::write(d.path().join("ucx").join(f), b"").expect("module");
        }
        let m = ucx_modules(&d.path().join("libucp-abc.so.0.0.0"));
        assert_eq!(m, vec!["cma", "cuda", "ib_efa"]);
        assert!(ucx_modules(Path::new("/nonexistent/libucp.so")).is_empty());
    }
}
