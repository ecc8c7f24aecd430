//! `fabric probe` with a named UCX library: the transport truth names the file and
//! version, UCX's protocol selection is printed, the tcp emulation finding appears
//! only when RMA is emulated over tcp, and GPU memory without a CUDA-capable UCX (or
//! GPU) is refused with the reason. Uses Debian's libucx0 and, when
//! `SERVESCOPE_NIXL_UCX` names it (scripts/test.sh sets it from the cached nixl
//! venv), the NIXL wheel's bundled UCX.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const DEBIAN_UCX: &str = "/lib/x86_64-linux-gnu/libucp.so.0";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_servescope"))
}

fn agent_bin() -> Option<PathBuf> {
    let p = bin().parent()?.join("servescope-agent");
    p.exists().then_some(p)
}

struct Agent(Child, String);
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(agent: &Path, tok: &Path) -> Agent {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(agent)
        .args(["--listen", &addr, "--metrics-listen", "off", "--token-file"])
        .arg(tok)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start agent");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Agent(child, addr)
}

fn probe(tok: &Path, a: &Agent, b: &Agent, extra: &[&str]) -> (Output, String) {
    let o = Command::new(bin())
        .args([
            "fabric",
            "probe",
            "--from",
            &a.1,
            "--to",
            &b.1,
            "--no-store",
        ])
        .arg("--token-file")
        .arg(tok)
        .args(["--sizes", "64K,1M", "--window", "4", "--iterations", "5"])
        .args(["--latency-iterations", "5"])
        .args(extra)
        .output()
        .expect("run servescope");
    let t = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o, t)
}

#[test]
fn named_ucx_libraries_tell_their_protocols_and_findings() {
    let Some(agent) = agent_bin() else {
        println!("skipping: servescope-agent binary not built beside servescope");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = dir.path().join("token");
    std::fs::write(&tok, "engine-token\n").expect("token");
    let a = start_agent(&agent, &tok);
    let b = start_agent(&agent, &tok);
    let mut libs = Vec::new();
    if Path::new(DEBIAN_UCX).exists() {
        libs.push(DEBIAN_UCX.to_string());
    } else {
        println!("skipping Debian UCX: {DEBIAN_UCX} absent");
    }
    match std::env::var("SERVESCOPE_NIXL_UCX") {
        Ok(p) if Path::new(&p).exists() => libs.push(p),
        _ => println!("skipping the NIXL wheel's UCX: SERVESCOPE_NIXL_UCX not set"),
    }
    for lib in &libs {
        // Default transports on host memory: shared memory, no finding.
        let (o, t) = probe(
            &tok,
            &a,
            &b,
            &[
                "--transport",
                "ucx",
                "--ucx-lib",
                lib,
                "--ops",
                "rma_write,rma_read",
            ],
        );
        assert!(o.status.success(), "{lib}: {t}");
        assert!(
            t.contains(&format!("({lib}")) || t.contains("libucp"),
            "{lib}: {t}"
        );
        // UCX 1.13 with peer error handling keeps only tcp between two processes:
        // there the finding is the truth; with shared-memory lanes there is none.
        if t.contains("lanes=[tcp/lo]") {
            println!("{lib}: default transports are tcp only here; finding expected");
            assert!(t.contains("FINDING emulated_over_tcp"), "{lib}: {t}");
        } else {
            assert!(
                !t.contains("FINDING"),
                "{lib}: healthy run raised a finding\n{t}"
            );
        }
        // Forced tcp: RMA read is emulated over tcp.
        let (o, t) = probe(
            &tok,
            &a,
            &b,
            &[
                "--transport",
                "ucx:tcp",
                "--ucx-lib",
                lib,
                "--ops",
                "rma_read",
            ],
        );
        assert!(o.status.success(), "{lib}: {t}");
        assert!(t.contains("FINDING emulated_over_tcp"), "{lib}: {t}");
        assert!(t.contains("evidence:"), "{lib}: {t}");
        // GPU memory: refused with the reason (no CUDA here, or no CUDA transport).
        let (o, t) = probe(
            &tok,
            &a,
            &b,
            &["--transport", "ucx", "--ucx-lib", lib, "--mem", "cuda"],
        );
        if o.status.success() {
            println!("GPU path ran with {lib} (a GPU and CUDA-capable UCX are here)");
        } else {
            assert!(
                t.contains("cuda") && (t.contains("CUDA") || t.contains("libcuda")),
                "{lib}: refusal without a reason\n{t}"
            );
        }
    }
}
