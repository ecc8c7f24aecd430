//! `fabric probe` with a named UCX library: the transport truth names the file and
//! version, UCX's protocol selection is printed, the tcp emulation finding appears
//! only when RMA is emulated over tcp, and GPU memory without a CUDA-capable UCX (or
//! GPU) is refused with the reason. Uses Debian's libucx0 and, when
//! `SERVESCOPE_NIXL_UCX` names it (scripts/test.sh sets it from the cached nixl
//! venv), the NIXL wheel's bundled UCX.

use std::path::Path;
use std::process::Output;

const DEBIAN_UCX: &str = "/lib/x86_64-linux-gnu/libucp.so.0";

mod common;
use common::{agent_bin, bin, both_streams, fabric_probe, loopback_agent, Kill};

/// An agent (killed when dropped) and its address.
type Agent = (Kill, String);

fn probe(tok: &Path, a: &Agent, b: &Agent, extra: &[&str]) -> (Output, String) {
    let o = fabric_probe(&mut bin(), tok, &a.1, &b.1)
        .args(["--sizes", "64K,1M", "--window", "4", "--iterations", "5"])
        .args(["--latency-iterations", "5"])
        .args(extra)
        .output()
        .expect("run servescope");
    let t = both_streams(&o);
    (o, t)
}

#[test]
fn named_ucx_libraries_tell_their_protocols_and_findings() {
    if agent_bin().is_none() {
        println!("skipping: servescope-agent binary not built beside servescope");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = dir.path().join("token");
    std::fs::write(&tok, "engine-token\n").expect("token");
    let a = loopback_agent(&tok).expect("start agent");
    let b = loopback_agent(&tok).expect("start agent");
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
