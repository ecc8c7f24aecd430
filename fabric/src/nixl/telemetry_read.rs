//! Reading NIXL's telemetry buffers with the reader NIXL ships in its wheel
//! (`<site-packages>/nixl_cu13.scripts/telemetry_reader`, a native program that needs
//! the wheel's libraries on its loader path and is installed without the execute
//! bit: it runs from a private copy). The reader prints every event the buffer holds
//! and then waits for more; it is stopped once it has been quiet for a moment, at a
//! time limit, or at an output cap. Reading consumes the events: NIXL's buffer is a
//! queue, and a second read sees only what came since.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::child::PrivateDir;
use super::telemetry::{self, Summary, MAX_BYTES};
use crate::engine_libs;
use crate::error::FabricError;

/// Wheel packages whose scripts directory holds the reader, newest first.
const PACKAGES: &[&str] = &["nixl_cu13", "nixl_cu12", "nixl"];
/// Buffer files read per directory at most.
pub const MAX_BUFFERS: usize = 32;
/// Longest one buffer's read may take.
pub const READ_WAIT: Duration = Duration::from_secs(1);
/// The reader is done once its output has been quiet this long after its header.
const QUIET: Duration = Duration::from_millis(200);
/// Stderr kept from the reader.
const MAX_STDERR: usize = 16 << 10;

fn unavailable(why: String) -> FabricError {
    FabricError::NixlUnavailable(why)
}

/// NIXL's telemetry reader in one site-packages directory, with the library
/// directories it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub exe: PathBuf,
    pub lib_dirs: Vec<PathBuf>,
}

impl Reader {
    /// The reader of the NIXL wheel installed in `site`, if there is one.
    pub fn in_site(site: &Path) -> Option<Reader> {
        PACKAGES.iter().find_map(|pkg| {
            let exe = site.join(format!("{pkg}.scripts")).join("telemetry_reader");
            if !exe.is_file() {
                return None;
            }
            let lib_dirs = [format!(".{pkg}.mesonpy.libs"), format!("{pkg}.libs")]
                .iter()
                .map(|d| site.join(d))
                .filter(|d| d.is_dir())
                .collect();
            Some(Reader { exe, lib_dirs })
        })
    }

    /// The first reader found in `sites`; none is "NIXL not available (why)".
    pub fn find(sites: &[PathBuf]) -> Result<Reader, FabricError> {
        sites
            .iter()
            .find_map(|s| Reader::in_site(s))
            .ok_or_else(|| {
                let looked: Vec<String> = sites.iter().map(|s| s.display().to_string()).collect();
                unavailable(format!(
                    "no NIXL telemetry_reader ({}.scripts/telemetry_reader) in {}",
                    PACKAGES.join("|"),
                    if looked.is_empty() {
                        "any site-packages (none to look in)".into()
                    } else {
                        looked.join(", ")
                    }
                ))
            })
    }

    /// Reads every buffer file in `dir` (NIXL_TELEMETRY_DIR), in name order, each
    /// within `wait`. A buffer that cannot be read is reported with why, beside the
    /// others.
    pub fn read_dir(&self, dir: &Path, wait: Duration) -> Result<Vec<BufferRead>, FabricError> {
        let rd = std::fs::read_dir(dir)
            .map_err(|e| unavailable(format!("NIXL_TELEMETRY_DIR {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        files.sort();
        files.truncate(MAX_BUFFERS);
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let copy = self.private_copy()?;
        Ok(files
            .into_iter()
            .map(|f| BufferRead {
                agent: f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                result: self.run(&copy.1, &f, wait),
                path: f,
            })
            .collect())
    }

    /// The reader copied into a private directory with the execute bit.
    fn private_copy(&self) -> Result<(PrivateDir, PathBuf), FabricError> {
        use std::os::unix::fs::PermissionsExt;
        let why = |e: std::io::Error| {
            unavailable(format!("copying {} to run it: {e}", self.exe.display()))
        };
        let dir = PrivateDir::new().map_err(why)?;
        let exe = dir.0.join("telemetry_reader");
        std::fs::copy(&self.exe, &exe).map_err(why)?;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o700)).map_err(why)?;
        Ok((dir, exe))
    }

    /// One buffer: the reader run on it, stopped and parsed.
    fn run(&self, exe: &Path, file: &Path, wait: Duration) -> Result<Summary, String> {
        let ld = std::env::join_paths(&self.lib_dirs).map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg(file)
            .env("LD_LIBRARY_PATH", ld)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.exe.display()))?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let out = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let Some(mut out) = out else { return };
            let mut buf = [0u8; 64 << 10];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        let err = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(e) = err {
                let _ = e.take(MAX_STDERR as u64).read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).trim().to_string()
        });
        let deadline = Instant::now() + wait;
        let mut text: Vec<u8> = Vec::new();
        let mut capped = false;
        let mut ended = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left.min(QUIET)) {
                Ok(chunk) => {
                    text.extend_from_slice(&chunk);
                    if text.len() > MAX_BYTES {
                        capped = true;
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if has_header(&text) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    ended = true;
                    break;
                }
            }
        }
        let status = if ended { child.wait().ok() } else { None };
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(rx);
        let _ = reader.join();
        let stderr = err_reader.join().unwrap_or_default();
        if let Some(st) = status.filter(|s| !s.success()) {
            let said = String::from_utf8_lossy(&text);
            let last = said.lines().last().unwrap_or("").trim();
            return Err(format!("the reader exited ({st}): {stderr} {last}")
                .trim()
                .to_string());
        }
        if !has_header(&text) {
            return Err(format!(
                "the reader opened no buffer within {wait:?}{}",
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                }
            ));
        }
        if capped {
            // Keep whole lines under the cap; the event cut there is left out.
            text.truncate(MAX_BYTES);
            let end = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            text.truncate(end);
        }
        let parsed = telemetry::parse(&String::from_utf8_lossy(&text), ended && !capped)
            .map_err(|e| e.to_string())?;
        let mut s = telemetry::summarize(&parsed);
        s.partial_tail |= capped;
        Ok(s)
    }
}

/// Whether the reader said it opened the buffer.
fn has_header(text: &[u8]) -> bool {
    const MARK: &[u8] = b"Buffer capacity:";
    text.windows(MARK.len()).any(|w| w == MARK)
}

/// One buffer file and what reading it gave.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferRead {
    /// The file name: the NIXL agent's name.
    pub agent: String,
    pub path: PathBuf,
    pub result: Result<Summary, String>,
}

/// The site-packages directory a library path lies in
/// (`.../site-packages/nixl_cu13.libs/libucp-….so` → `.../site-packages`).
pub fn site_of(lib: &str) -> Option<PathBuf> {
    ["/site-packages/", "/dist-packages/"].iter().find_map(|m| {
        let i = lib.find(m)?;
        Some(PathBuf::from(&lib[..i + m.len() - 1]))
    })
}

/// Where to look for the reader, most direct first: the site-packages of libraries
/// the engine has mapped or loads, then those of a Python's prefix
/// (`<prefix>/bin/python` → `<prefix>/lib/python3*/site-packages`). Distinct.
pub fn candidate_sites<'a>(
    libs: impl IntoIterator<Item = &'a str>,
    python: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = libs.into_iter().filter_map(site_of).collect();
    if let Some(prefix) = python.and_then(Path::parent).and_then(Path::parent) {
        out.extend(engine_libs::site_dirs(prefix));
    }
    let mut seen = Vec::new();
    out.retain(|p| {
        let new = !seen.contains(p);
        if new {
            seen.push(p.clone());
        }
        new
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_from_mapped_libraries_and_a_python_prefix() {
        assert_eq!(
            site_of("/v/lib/python3.12/site-packages/.nixl_cu13.mesonpy.libs/libnixl.so"),
            Some(PathBuf::from("/v/lib/python3.12/site-packages"))
        );
        assert_eq!(
            site_of("/usr/lib/python3/dist-packages/nixl_cu13.libs/libucp-1.so.0"),
            Some(PathBuf::from("/usr/lib/python3/dist-packages"))
        );
        assert_eq!(site_of("/usr/lib/libucp.so.0"), None);
        let d = tempfile::tempdir().expect("dir");
        let site = d.path().join("lib/python3.11/site-packages");
        std::fs::create_dir_all(&site).expect("site");
        let lib = format!("{}/nixl_cu13.libs/libucp-x.so", site.display());
        let c = candidate_sites(
            [lib.as_str(), lib.as_str(), "/usr/lib/libc.so.6"],
            Some(&d.path().join("bin/python")),
        );
        assert_eq!(c[0], site);
        assert_eq!(c.iter().filter(|p| **p == site).count(), 1, "{c:?}");
    }

    #[test]
    fn the_reader_and_its_libraries_in_a_wheel_layout() {
        let d = tempfile::tempdir().expect("dir");
        let site = d.path();
        assert!(Reader::in_site(site).is_none());
        let e = Reader::find(&[site.to_path_buf()]).expect_err("none");
        assert!(
            e.to_string()
                .starts_with("NIXL not available on this node (no NIXL telemetry_reader"),
            "{e}"
        );
        std::fs::create_dir_all(site.join("nixl_cu13.scripts")).expect("scripts");
        std::fs::create_dir_all(site.join("nixl_cu13.libs")).expect("libs");
        std::fs::create_dir_all(site.join(".nixl_cu13.mesonpy.libs")).expect("libs");
        std::fs::write(site.join("nixl_cu13.scripts/telemetry_reader"), b"").expect("exe");
        let r = Reader::find(&[PathBuf::from("/nonexistent"), site.to_path_buf()]).expect("found");
        assert_eq!(r.exe, site.join("nixl_cu13.scripts/telemetry_reader"));
        assert_eq!(
            r.lib_dirs,
            vec![
                site.join(".nixl_cu13.mesonpy.libs"),
                site.join("nixl_cu13.libs")
            ]
        );
    }

    /// A stand-in reader (a shell script) that prints a captured buffer and then
    /// waits, as NIXL's does: read, stopped when quiet, parsed; one that fails is
    /// reported with its words.
    #[test]
    fn a_waiting_reader_is_stopped_and_a_failing_one_is_explained() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("dir");
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/nixl_telemetry_initiator.txt"
        );
        let mk = |name: &str, body: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("script");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("mode");
            Reader {
                exe: p,
                lib_dirs: vec![d.path().to_path_buf()],
            }
        };
        let bufs = d.path().join("bufs");
        std::fs::create_dir(&bufs).expect("bufs");
        std::fs::write(bufs.join("agent-a"), b"").expect("buffer");
        let waiting = mk("waits", &format!("cat {fixture}; exec sleep 30"));
        let t0 = Instant::now();
        let got = waiting
            .read_dir(&bufs, Duration::from_secs(5))
            .expect("read");
        assert!(t0.elapsed() < Duration::from_secs(3), "stopped once quiet");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].agent, "agent-a");
        let s = got[0].result.as_ref().expect("summary");
        assert_eq!((s.tx_requests, s.rx_requests, s.events), (23, 10, 133));
        let failing = mk(
            "fails",
            "echo 'Telemetry path: x'; echo 'Failed to open a file for shared memory' >&2; exit 1",
        );
        let got = failing
            .read_dir(&bufs, Duration::from_secs(5))
            .expect("read");
        let e = got[0].result.as_ref().expect_err("failed");
        assert!(e.contains("exited") && e.contains("Failed to open"), "{e}");
        assert!(waiting.read_dir(&d.path().join("none"), READ_WAIT).is_err());
    }
}
