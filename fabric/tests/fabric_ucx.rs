//! Loopback UCX probes: two endpoints (each with its own UCX context) in one process,
//! driver on the test thread, responder on a thread of its own. Skips when UCX is
//! not installed.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use servescope_fabric::ucx::{self, UcxEndpoint, UcxOptions};
use servescope_fabric::{
    FabricError, MemKind, Op, PeerInfo, ProbeEndpoint, ProbePlan, SizeResult, TransportTruth,
    Verify,
};

fn skip() -> bool {
    match ucx::library() {
        Ok(_) => false,
        Err(e) => {
            println!("skipping: {e}");
            true
        }
    }
}

fn opts(tls: &str) -> UcxOptions {
    UcxOptions {
        tls: Some(tls.to_string()),
        net_devices: None,
        library: None,
    }
}

fn plan() -> ProbePlan {
    ProbePlan {
        sizes: vec![4 << 10, 64 << 10, 1 << 20],
        ops: vec![Op::Tag, Op::RmaWrite, Op::RmaRead],
        window: 8,
        iterations: 20,
        latency_iterations: 50,
        warmup: 1,
        duration_per_size: Duration::from_secs(1),
        max_duration: Duration::from_secs(60),
        peer_timeout: Duration::from_secs(2),
        mem: MemKind::Host,
        responder_mem: None,
        verify: false,
        corrupt_received_byte: None,
        touch_payload: true,
    }
}

type Outcome = (
    Result<Vec<SizeResult>, FabricError>,
    Result<(), FabricError>,
    TransportTruth,
    TransportTruth,
);

/// Runs a probe pair; the responder stops (cancel) after `responder_life` if given.
fn pair(o: &UcxOptions, p: &ProbePlan, responder_life: Option<Duration>) -> Outcome {
    let (to_driver, from_resp) = mpsc::channel::<PeerInfo>();
    let (to_resp, from_driver) = mpsc::channel::<PeerInfo>();
    let (ro, rp) = (o.clone(), p.for_responder());
    let resp = std::thread::spawn(move || -> (Result<(), FabricError>, TransportTruth) {
        let mut e = match UcxEndpoint::new(&ro, &rp) {
            Ok(e) => e,
            Err(err) => return (Err(err), TransportTruth::default()),
        };
        to_driver.send(e.local_info()).unwrap();
        let peer = from_driver.recv().unwrap();
        if let Err(err) = e.connect(&peer) {
            return (Err(err), e.truth());
        }
        let t0 = Instant::now();
        let cancel = move || responder_life.is_some_and(|l| t0.elapsed() > l);
        let r = e.run_responder(&rp, &cancel);
        (r, e.truth())
        // e dropped here: worker destroyed, as when a peer dies.
    });
    let mut d = UcxEndpoint::new(o, p).expect("driver endpoint");
    let peer = from_resp.recv().expect("responder info");
    to_resp.send(d.local_info()).unwrap();
    d.connect(&peer).expect("connect");
    let res = d.run_driver(p, &|| false);
    let (rr, rt) = resp.join().unwrap();
    (res, rr, d.truth(), rt)
}

fn check_probe(tls: &str, lane_prefix: &str, p: ProbePlan) {
    if skip() {
        return;
    }
    let (res, rr, truth, rtruth) = pair(&opts(tls), &p, None);
    let res = res.unwrap_or_else(|e| panic!("UCX_TLS={tls}: driver: {e}"));
    rr.unwrap_or_else(|e| panic!("UCX_TLS={tls}: responder: {e}"));
    println!(
        "UCX_TLS={tls}: {truth:?}\nresponder lanes {:?}",
        rtruth.lanes
    );
    assert_eq!(res.len(), p.sizes.len() * p.ops.len());
    for r in &res {
        println!(
            "  {:>8} B {:<9} {:>10.1} MB/s (1e6) {:>9.0} msg/s  p50 {:?} ns p99 {:?} ns",
            r.size,
            r.op,
            r.bandwidth_bps / 1e6,
            r.messages_per_s,
            r.latency_p50_ns,
            r.latency_p99_ns
        );
        assert!(r.bandwidth_bps > 0.0 && r.bytes > 0, "{r:?}");
        if r.op == "tag" {
            assert!(r.latency_p50_ns.unwrap_or(0) > 0, "{r:?}");
            assert!(r.latency_p99_ns >= r.latency_p50_ns);
        }
    }
    assert_eq!(truth.library, "ucx");
    assert!(truth.version.starts_with('1'), "{truth:?}");
    assert!(truth.path.contains("libucp"), "{truth:?}");
    assert!(
        truth.lanes.iter().any(|l| l.starts_with(lane_prefix)),
        "lanes {:?} name no {lane_prefix}",
        truth.lanes
    );
    assert!(!truth.rma.is_empty());
    assert_eq!(truth.memory, "host");
}

#[test]
fn tcp_loopback_tag_and_rma() {
    check_probe("tcp", "tcp/", plan());
}

/// Over shared memory, with payload buffers as ucx_perftest leaves them (never
/// written before the probe) and one size on 2 MiB huge-page-advised memory.
#[test]
fn posix_loopback_tag_and_rma() {
    let p = ProbePlan {
        sizes: vec![4 << 10, 64 << 10, 4 << 20],
        iterations: 4,
        touch_payload: false,
        ..plan()
    };
    check_probe("posix", "posix/", p);
}

#[test]
fn responder_that_stops_gives_a_clean_error() {
    if skip() {
        return;
    }
    let p = ProbePlan {
        sizes: vec![64 << 10],
        ops: vec![Op::Tag],
        iterations: 100_000,
        latency_iterations: 0,
        duration_per_size: Duration::from_secs(30),
        ..plan()
    };
    let t = Instant::now();
    let (res, rr, _, _) = pair(&opts("tcp"), &p, Some(Duration::from_millis(500)));
    let took = t.elapsed();
    println!("driver: {res:?}\nresponder: {rr:?}\nafter {took:?}");
    assert!(matches!(rr, Err(FabricError::Cancelled)), "{rr:?}");
    match res {
        Err(FabricError::Timeout(..)) | Err(FabricError::Call { .. }) => {}
        other => panic!("expected a timeout or peer error, got {other:?}"),
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn unknown_tls_is_a_clean_error_naming_it() {
    if skip() {
        return;
    }
    let err = UcxEndpoint::new(&opts("nosuchtl"), &plan())
        .err()
        .expect("must fail");
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains("nosuchtl"), "{msg}");
}

#[test]
fn cuda_memory_is_refused_with_a_reason() {
    if skip() {
        return;
    }
    let p = ProbePlan {
        mem: MemKind::Cuda(0),
        ..plan()
    };
    match UcxEndpoint::new(&opts("tcp"), &p) {
        Err(FabricError::Memory("cuda", why)) => {
            println!("{why}");
            assert!(!why.is_empty());
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("cuda memory must be refused"),
    }
}

/// Runs `ucx_perftest` (server child + client) with UCX_TLS=tcp on loopback.
fn perftest(test: &str, size: u64, iters: u32, port: u16) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let args = |c: &mut Command| {
        c.env("UCX_TLS", "tcp")
            .args([
                "-t",
                test,
                "-s",
                &size.to_string(),
                "-n",
                &iters.to_string(),
            ])
            .args(["-p", &port.to_string()]);
    };
    let mut srv = Command::new("ucx_perftest");
    args(&mut srv);
    let mut srv = srv
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("ucx_perftest: {e}"))?;
    std::thread::sleep(Duration::from_millis(700));
    let mut cli = Command::new("ucx_perftest");
    args(&mut cli);
    let out = cli.arg("127.0.0.1").output().map_err(|e| e.to_string());
    let _ = srv.kill();
    let _ = srv.wait();
    Ok(String::from_utf8_lossy(&out?.stdout).into_owned())
}

/// Cross-check against ucx_perftest (tag_bw, ucp_put_bw, ucp_get) at 64 KiB and
/// 1 MiB over tcp. Prints both; run with `--ignored --nocapture`.
#[test]
#[ignore = "slow; compares with ucx_perftest"]
fn cross_check_with_ucx_perftest() {
    if skip() {
        return;
    }
    let p = ProbePlan {
        sizes: vec![64 << 10, 1 << 20],
        latency_iterations: 0,
        iterations: 200,
        duration_per_size: Duration::from_secs(2),
        ..plan()
    };
    let (res, rr, _, _) = pair(&opts("tcp"), &p, None);
    rr.unwrap();
    let res = res.unwrap();
    for (test, op) in [
        ("tag_bw", "tag"),
        ("ucp_put_bw", "rma_write"),
        ("ucp_get", "rma_read"),
    ] {
        for size in [64u64 << 10, 1 << 20] {
            let iters = if size > 65536 { 500 } else { 2000 };
            let pt = match perftest(test, size, iters, 13411) {
                Ok(o) => ucx::parse_perftest(&o),
                Err(e) => {
                    println!("skipping ucx_perftest: {e}");
                    return;
                }
            };
            let ours = res.iter().find(|r| r.op == op && r.size == size);
            println!(
                "{test:<10} {size:>8} B: ucx_perftest {:>8.1} MB/s (1e6), probe {:>8.1} MB/s (1e6)",
                pt.map_or(0.0, |r| r.bandwidth_overall_bps / 1e6),
                ours.map_or(0.0, |r| r.bandwidth_bps / 1e6)
            );
        }
    }
}

/// GPU memory on both sides (cuda:0), only when SERVESCOPE_UCX_CUDA_TLS names the
/// UCX_TLS to use (e.g. "tcp,cuda_copy" or "sm,cuda_copy,cuda_ipc"): needs a GPU
/// and a UCX built with CUDA.
#[test]
fn cuda_loopback_if_requested() {
    let Ok(tls) = std::env::var("SERVESCOPE_UCX_CUDA_TLS") else {
        println!("skipping: SERVESCOPE_UCX_CUDA_TLS not set");
        return;
    };
    if skip() {
        return;
    }
    for ops in [vec![Op::Tag], vec![Op::RmaWrite, Op::RmaRead]] {
        let p = ProbePlan {
            mem: MemKind::Cuda(0),
            ops: ops.clone(),
            verify: true,
            ..plan()
        };
        let (res, rr, truth, _) = pair(&opts(&tls), &p, None);
        println!("cuda {ops:?}: {truth:?}\nresponder: {rr:?}");
        if let Ok(v) = &res {
            assert!(v.iter().all(|r| r.verify == Verify::Verified), "{v:?}");
        }
        match &res {
            Ok(v) => v.iter().for_each(|r| {
                println!(
                    "  {:>8} B {:<9} {:>10.1} MB/s (1e6) p50 {:?} ns",
                    r.size,
                    r.op,
                    r.bandwidth_bps / 1e6,
                    r.latency_p50_ns
                )
            }),
            Err(e) => println!("  driver error: {e}"),
        }
        if ops == [Op::Tag] {
            assert!(res.is_ok(), "{res:?}");
            assert_eq!(truth.memory, "cuda:0");
        }
    }
    // GPU → host (cuda_copy): the driver's buffer on GPU 0, the responder's in host memory.
    let p = ProbePlan {
        mem: MemKind::Cuda(0),
        responder_mem: Some(MemKind::Host),
        verify: true,
        ..plan()
    };
    let (res, rr, truth, rtruth) = pair(&opts(&tls), &p, None);
    println!("cuda→host: {res:?}\nresponder: {rr:?}\n{truth:?}");
    assert_eq!(truth.memory, "cuda:0→host");
    assert_eq!(rtruth.memory, "host");
    let rows = res.expect("GPU → host probe");
    assert!(
        rows.iter().all(|r| r.verify == Verify::Verified),
        "{rows:?}"
    );
}

/// Every op's contents arrive intact and say so, over tcp and shared memory.
#[test]
fn loopback_contents_are_verified() {
    if skip() {
        return;
    }
    for tls in ["tcp", "posix"] {
        let p = ProbePlan {
            sizes: vec![4 << 10, 1 << 20],
            iterations: 4,
            latency_iterations: 5,
            verify: true,
            ..plan()
        };
        let (res, rr, _, _) = pair(&opts(tls), &p, None);
        let rows = res.unwrap_or_else(|e| panic!("UCX_TLS={tls}: {e}"));
        rr.unwrap_or_else(|e| panic!("UCX_TLS={tls}: responder: {e}"));
        assert_eq!(rows.len(), 6);
        for r in &rows {
            assert_eq!(r.verify, Verify::Verified, "UCX_TLS={tls}: {r:?}");
        }
    }
}

/// One byte flipped on the receiving side after the phase: the driver's error
/// names the op, the size and the offset, and the responder still ends cleanly.
#[test]
fn corrupted_contents_name_size_op_and_offset() {
    if skip() {
        return;
    }
    for op in [Op::Tag, Op::RmaWrite, Op::RmaRead] {
        let p = ProbePlan {
            sizes: vec![64 << 10],
            ops: vec![op],
            iterations: 2,
            latency_iterations: 2,
            verify: true,
            corrupt_received_byte: Some(4100),
            ..plan()
        };
        let (res, rr, _, _) = pair(&opts("tcp"), &p, None);
        let e = res.expect_err("a corrupted byte must fail the probe");
        let msg = e.to_string();
        println!("{msg}");
        match e {
            FabricError::Mismatch {
                op: name,
                size,
                offset,
                ..
            } => assert_eq!((name, size, offset), (op.name(), 65536, 4100)),
            other => panic!("expected a mismatch, got {other:?}"),
        }
        assert!(msg.contains(op.name()) && msg.contains("65536") && msg.contains("offset 4100"));
        rr.expect("the responder ends cleanly");
    }
}
