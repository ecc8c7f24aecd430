//! Which Python runs the NIXL driver: the serving engine's own, so that its NIXL
//! package and the UCX bundled with it are what gets measured.

use std::path::{Path, PathBuf};

use crate::error::FabricError;

/// Where the Python comes from, most explicit first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PythonChoice {
    /// `--python PATH`: this interpreter.
    pub python: Option<PathBuf>,
    /// `--engine-venv PATH`: `<venv>/bin/python`.
    pub engine_venv: Option<PathBuf>,
    /// `--like-pid PID`: the interpreter that serving process runs.
    pub like_pid: Option<u32>,
}

/// The interpreter found and how it was chosen (for the transport truth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Python {
    pub path: PathBuf,
    pub how: String,
}

fn unavailable(why: String) -> FabricError {
    FabricError::NixlUnavailable(why)
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// An absolute path without resolving links (a venv's `bin/python` is a link whose
/// location is what makes it the venv's): the driver runs in another directory.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Whether a file name looks like a Python interpreter (python, python3, python3.12).
pub fn is_python_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("python") && !n.ends_with("-config"))
}

/// `python3` on PATH, if any.
pub fn python3_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("python3"))
        .find(|p| executable(p))
}

/// The environment whose packages a process has mapped (a NIXL library under
/// `<root>/lib/pythonX.Y/site-packages/`): `<root>/bin/python`, when it exists.
fn venv_of_maps(dir: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut maps = Vec::new();
    std::fs::File::open(dir.join("maps"))
        .ok()?
        .take(4 << 20)
        .read_to_end(&mut maps)
        .ok()?;
    String::from_utf8_lossy(&maps)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains("nixl"))
        .find_map(|p| {
            let root = &p[..p.find("/lib/python")?];
            let py = Path::new(root).join("bin").join("python");
            executable(&py).then_some(py)
        })
}

/// The Python a process runs: its argv[0] when that is an absolute path to a Python
/// (a venv's `bin/python`, which `/proc/PID/exe` would resolve past), else the
/// environment of the NIXL it has mapped, else its executable when that is a Python.
pub fn python_of_pid(proc_root: &Path, pid: u32) -> Result<Option<PathBuf>, String> {
    let dir = proc_root.join(pid.to_string());
    let cmdline = std::fs::read(dir.join("cmdline")).map_err(|e| format!("process {pid}: {e}"))?;
    if let Some(argv0) = cmdline.split(|&b| b == 0).next() {
        let p = PathBuf::from(String::from_utf8_lossy(argv0).into_owned());
        if p.is_absolute() && is_python_name(&p) && executable(&p) {
            return Ok(Some(p));
        }
    }
    if let Some(p) = venv_of_maps(&dir) {
        return Ok(Some(p));
    }
    match std::fs::read_link(dir.join("exe")) {
        Ok(exe) if is_python_name(&exe) => Ok(Some(exe)),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("process {pid}: reading its executable: {e}")),
    }
}

impl PythonChoice {
    /// Resolves the interpreter; a named one that is not there is refused with the
    /// reason, never replaced by another.
    pub fn resolve(&self) -> Result<Python, FabricError> {
        if let Some(p) = &self.python {
            if !executable(p) {
                return Err(unavailable(format!(
                    "python {} is not an executable file",
                    p.display()
                )));
            }
            return Ok(Python {
                path: absolute(p),
                how: "--python".into(),
            });
        }
        if let Some(v) = &self.engine_venv {
            let p = v.join("bin").join("python");
            if !executable(&p) {
                return Err(unavailable(format!(
                    "no Python in the engine environment {} ({} missing)",
                    v.display(),
                    p.display()
                )));
            }
            return Ok(Python {
                path: absolute(&p),
                how: format!("--engine-venv {}", v.display()),
            });
        }
        if let Some(pid) = self.like_pid {
            match python_of_pid(Path::new("/proc"), pid) {
                Ok(Some(p)) => {
                    return Ok(Python {
                        path: p,
                        how: format!("the Python of process {pid}"),
                    })
                }
                Ok(None) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        python3_on_path()
            .map(|p| Python {
                path: p,
                how: "python3 on PATH".into(),
            })
            .ok_or_else(|| unavailable("no python3 on PATH and no --python/--engine-venv".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_interpreters_that_are_missing_are_refused_with_the_reason() {
        let e = PythonChoice {
            python: Some("/nonexistent/python3".into()),
            ..Default::default()
        }
        .resolve()
        .expect_err("missing");
        assert!(e
            .to_string()
            .starts_with("NIXL not available on this node (python /nonexistent"));
        let e = PythonChoice {
            engine_venv: Some("/nonexistent/venv".into()),
            ..Default::default()
        }
        .resolve()
        .expect_err("missing venv");
        assert!(
            e.to_string()
                .contains("no Python in the engine environment"),
            "{e}"
        );
    }

    #[test]
    fn python_names_and_pid_lookup() {
        assert!(is_python_name(Path::new("/usr/bin/python3.12")));
        assert!(!is_python_name(Path::new("/usr/bin/python3-config")));
        assert!(!is_python_name(Path::new("/usr/bin/vllm")));
        let dir = std::env::temp_dir().join(format!("ss-pyproc-{}", std::process::id()));
        let pd = dir.join("42");
        std::fs::create_dir_all(&pd).expect("dir");
        let py = python3_on_path();
        let argv0 = py.clone().unwrap_or_else(|| "/bin/sh".into());
        std::fs::write(
            pd.join("cmdline"),
            format!("{}\0-m\0vllm\0", argv0.display()),
        )
        .expect("cmdline");
        std::os::unix::fs::symlink("/usr/bin/true", pd.join("exe")).expect("exe");
        let got = python_of_pid(&dir, 42).expect("read");
        assert_eq!(
            got, py,
            "argv0 when it is a Python, else nothing (exe is not)"
        );
        assert!(python_of_pid(&dir, 43).is_err());
        // argv0 no Python: the venv of the NIXL library it mapped.
        let venv = dir.join("venv");
        std::fs::create_dir_all(venv.join("bin")).expect("venv");
        std::os::unix::fs::symlink("/bin/sh", venv.join("bin/python")).expect("python");
        let p44 = dir.join("44");
        std::fs::create_dir_all(&p44).expect("dir");
        std::fs::write(p44.join("cmdline"), "vllm-worker\0").expect("cmdline");
        std::fs::write(
            p44.join("maps"),
            format!(
                "7f00-7f01 r-xp 0 08:01 1 {}/lib/python3.12/site-packages/nixl_cu13.libs/libnixl.so\n",
                venv.display()
            ),
        )
        .expect("maps");
        assert_eq!(
            python_of_pid(&dir, 44).expect("read"),
            Some(venv.join("bin/python"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
