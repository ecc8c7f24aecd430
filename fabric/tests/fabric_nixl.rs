//! NIXL-level probes between two `NixlEndpoint`s in one test process (each its own
//! driver child) on host memory, with the real NIXL wheel from `scripts/nixl_venv.sh`
//! (SERVESCOPE_NIXL_PYTHON, else target/nixl-venv); and the "NIXL not available"
//! path with Pythons that cannot run it.

use std::path::PathBuf;
use std::time::Duration;

use servescope_fabric::nixl::{NixlEndpoint, NixlOptions, PythonChoice};
use servescope_fabric::test_support::nixl_python;
use servescope_fabric::{FabricError, Op, ProbeEndpoint, ProbePlan};

fn plan() -> ProbePlan {
    ProbePlan {
        sizes: vec![64 << 10, 1 << 20],
        ops: vec![Op::RmaWrite, Op::RmaRead],
        iterations: 5,
        warmup: 1,
        peer_timeout: Duration::from_secs(30),
        ..Default::default()
    }
}

fn opts(python: PathBuf, block_size: u64) -> NixlOptions {
    NixlOptions {
        python: PythonChoice {
            python: Some(python),
            ..Default::default()
        },
        block_size,
        ..Default::default()
    }
}

#[test]
fn write_and_read_verified_between_two_drivers_on_host_memory() {
    let Some(py) = nixl_python() else { return };
    let p = plan();
    let mut target = NixlEndpoint::open(&opts(py.clone(), 4096), &p).expect("target");
    let mut init = NixlEndpoint::open(&opts(py, 4096), &p).expect("initiator");
    let (ti, ii) = (target.local_info(), init.local_info());
    assert!(!ti.address.is_empty() && !ti.rma.is_empty());
    target.connect(&ii).expect("connect target");
    init.connect(&ti).expect("connect initiator");
    let tp = p.clone();
    let server = std::thread::spawn(move || {
        let r = target.run_responder(&tp, &|| false);
        (r, target.truth())
    });
    let mut rows = Vec::new();
    for &size in &p.sizes {
        let step = ProbePlan {
            sizes: vec![size],
            ..p.clone()
        };
        rows.extend(init.run_driver(&step, &|| false).expect("run"));
    }
    let (served, ttruth) = server.join().expect("join");
    served.expect("target served and verified");
    assert_eq!(rows.len(), 4);
    for r in &rows {
        let x = r.nixl.as_ref().expect("nixl stats");
        assert!(x.verified, "{r:?}");
        assert_eq!(x.block_size, 4096);
        assert_eq!(x.blocks, r.size / 4096);
        assert!(r.bandwidth_bps > 0.0 && x.transfer.avg_us > 0.0 && x.post.avg_us > 0.0);
        assert!(x.transfer.p99_us >= x.transfer.avg_us * 0.5);
    }
    assert_eq!(rows[0].op, "WRITE");
    assert_eq!(rows[1].op, "READ");
    let t = init.truth();
    assert_eq!(t.library, "nixl:UCX");
    assert!(t.nixl_version.starts_with("nixl_cu13 "), "{t:?}");
    assert!(t.path.contains("libucp"), "{t:?}");
    assert!(t.version.starts_with("1."), "{t:?}");
    assert!(!t.lanes.is_empty(), "lanes from UCX_PROTO_INFO: {t:?}");
    assert!(t.rma.contains("WRITE:"), "{t:?}");
    assert_eq!(ttruth.library, "nixl:UCX");
}

#[test]
fn a_python_that_cannot_run_nixl_is_not_available_with_the_reason() {
    let p = plan();
    let e = NixlEndpoint::open(&opts("/bin/false".into(), 0), &p)
        .err()
        .expect("false is no python");
    assert!(matches!(e, FabricError::NixlUnavailable(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with("NIXL not available on this node ("),
        "{e}"
    );
    // A real Python without the nixl package.
    if let Some(py3) = servescope_fabric::nixl::python::python3_on_path() {
        let has_nixl = std::process::Command::new(&py3)
            .args(["-c", "import nixl_cu13"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(true);
        if !has_nixl {
            let e = NixlEndpoint::open(&opts(py3, 0), &p)
                .err()
                .expect("no nixl");
            let s = e.to_string();
            assert!(
                s.starts_with("NIXL not available on this node (NIXL not importable"),
                "{s}"
            );
        }
    }
}

#[test]
fn missing_backend_and_gpu_are_not_available() {
    let Some(py) = nixl_python() else { return };
    let p = plan();
    let mut o = opts(py.clone(), 0);
    o.backend = "LIBFABRIC".into();
    match NixlEndpoint::open(&o, &p) {
        // The wheel's LIBFABRIC plugin needs libfabric.so.1; where it loads, fine.
        Ok(_) => eprintln!("LIBFABRIC backend loads here"),
        Err(e) => {
            assert!(matches!(e, FabricError::NixlUnavailable(_)), "{e}");
            assert!(e.to_string().contains("LIBFABRIC"), "{e}");
        }
    }
    let gpu = ProbePlan {
        mem: servescope_fabric::MemKind::Cuda(0),
        ..p
    };
    match NixlEndpoint::open(&opts(py, 0), &gpu) {
        Ok(_) => eprintln!("a GPU is usable here"),
        Err(e) => {
            assert!(matches!(e, FabricError::NixlUnavailable(_)), "{e}");
            assert!(e.to_string().contains("cuda"), "{e}");
        }
    }
}
