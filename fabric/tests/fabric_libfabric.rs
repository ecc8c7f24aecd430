//! Loopback probes over libfabric (providers `tcp` and `shm`), two threads in one
//! process: the responder and the driver exchange `PeerInfo` through channels, as
//! the coordinator would over gRPC. Skips (prints "skipping: …") when libfabric or
//! the provider is absent.

use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use servescope_fabric::libfabric::{self, LibfabricEndpoint};
use servescope_fabric::{
    FabricError, MemKind, Op, PeerInfo, ProbeEndpoint, ProbePlan, SizeResult, TransportTruth,
    Verify,
};

/// Probes spin on the CQ; on a 2-core box run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SIZES: [u64; 3] = [4 << 10, 64 << 10, 1 << 20];

fn plan(ops: Vec<Op>) -> ProbePlan {
    ProbePlan {
        sizes: SIZES.to_vec(),
        ops,
        window: 8,
        iterations: 10,
        latency_iterations: 20,
        warmup: 1,
        duration_per_size: Duration::from_secs(1),
        max_duration: Duration::from_secs(60),
        peer_timeout: Duration::from_secs(5),
        mem: MemKind::Host,
        responder_mem: None,
        verify: false,
        corrupt_received_byte: None,
        touch_payload: true,
    }
}

/// Why this provider cannot be tested here, if it cannot.
fn skip_reason(provider: &str) -> Option<String> {
    let list = match libfabric::providers() {
        Ok(l) => l,
        Err(e) => return Some(e.to_string()),
    };
    let rdm = list
        .iter()
        .any(|p| p.core_provider() == provider && p.ep_type == "FI_EP_RDM");
    (!rdm).then(|| format!("libfabric provider {provider} offers no FI_EP_RDM here"))
}

struct Outcome {
    driver: Result<Vec<SizeResult>, FabricError>,
    responder: Result<(), FabricError>,
    truth: Option<TransportTruth>,
    elapsed: Duration,
}

fn loopback(provider: &str, plan: ProbePlan, silent_after: Option<usize>) -> Outcome {
    let (to_driver, from_responder) = mpsc::channel::<PeerInfo>();
    let (to_responder, from_driver) = mpsc::channel::<PeerInfo>();
    let start = Instant::now();
    let (p, pl) = (provider.to_string(), plan.for_responder());
    let responder = thread::spawn(move || -> Result<(), FabricError> {
        let mut ep = LibfabricEndpoint::open(&p, &pl)?;
        ep.set_responder_silent_after_sizes(silent_after);
        to_driver.send(ep.local_info()).ok();
        let peer = from_driver
            .recv_timeout(Duration::from_secs(30))
            .map_err(|e| FabricError::BadPeer(e.to_string()))?;
        ep.connect(&peer)?;
        ep.run_responder(&pl, &|| false)
        // The endpoint is dropped here: a silent responder is gone.
    });
    let (p, pl) = (provider.to_string(), plan);
    let driver = thread::spawn(move || {
        let mut ep = match LibfabricEndpoint::open(&p, &pl) {
            Ok(ep) => ep,
            Err(e) => return (Err(e), None),
        };
        let peer = match from_responder.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(e) => return (Err(FabricError::BadPeer(e.to_string())), None),
        };
        to_responder.send(ep.local_info()).ok();
        if let Err(e) = ep.connect(&peer) {
            return (Err(e), None);
        }
        let r = ep.run_driver(&pl, &|| false);
        (r, Some(ep.truth()))
    });
    let (driver, truth) = driver.join().expect("driver thread");
    let responder = responder.join().expect("responder thread");
    Outcome {
        driver,
        responder,
        truth,
        elapsed: start.elapsed(),
    }
}

fn print(provider: &str, rows: &[SizeResult]) {
    for r in rows {
        eprintln!(
            "{provider:>4} {:>9} B {:<9} {:>9.1} MB/s  {:>8} msgs  p50 {:>9?} ns  p99 {:>9?} ns",
            r.size,
            r.op,
            r.bandwidth_bps / 1e6,
            r.messages,
            r.latency_p50_ns,
            r.latency_p99_ns
        );
    }
}

fn probe_ok(provider: &str, ops: Vec<Op>) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = skip_reason(provider) {
        eprintln!("skipping: {why}");
        return;
    }
    let out = loopback(provider, plan(ops.clone()), None);
    let rows = out.driver.expect("driver");
    out.responder.expect("responder");
    print(provider, &rows);
    assert_eq!(rows.len(), SIZES.len() * ops.len());
    for r in &rows {
        assert!(SIZES.contains(&r.size));
        assert!(r.bandwidth_bps > 0.0, "{r:?}");
        assert!(r.bytes > 0 && r.seconds > 0.0, "{r:?}");
        if r.op == "tag" {
            assert!(r.latency_p50_ns.is_some_and(|v| v > 0), "{r:?}");
            assert!(r.latency_p99_ns >= r.latency_p50_ns);
        }
    }
    let truth = out.truth.expect("truth");
    assert_eq!(truth.library, "libfabric");
    assert!(
        truth.provider.split(';').any(|p| p == provider),
        "{truth:?}"
    );
    assert_eq!(truth.memory, "host");
    eprintln!("{truth:?} in {:?}", out.elapsed);
}

#[test]
fn tcp_loopback_tag_and_rma() {
    probe_ok("tcp", vec![Op::Tag, Op::RmaWrite, Op::RmaRead]);
}

#[test]
fn shm_loopback_tag_and_rma() {
    probe_ok("shm", vec![Op::Tag, Op::RmaWrite, Op::RmaRead]);
}

#[test]
fn silent_responder_gives_the_driver_a_clean_error() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for provider in ["tcp", "shm"] {
        if let Some(why) = skip_reason(provider) {
            eprintln!("skipping: {why}");
            continue;
        }
        let mut p = plan(vec![Op::Tag]);
        p.peer_timeout = Duration::from_secs(2);
        let out = loopback(provider, p, Some(1));
        assert!(out.responder.is_ok(), "{:?}", out.responder);
        match out.driver {
            Err(FabricError::Timeout(..)) | Err(FabricError::Call { .. }) => {}
            other => panic!("{provider}: expected Timeout or Call, got {other:?}"),
        }
        assert!(out.elapsed < Duration::from_secs(30), "{:?}", out.elapsed);
        eprintln!(
            "{provider}: driver error after {:?}: {}",
            out.elapsed,
            out.driver.err().map(|e| e.to_string()).unwrap_or_default()
        );
    }
}

#[test]
fn max_duration_bounds_the_probe() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let provider = "shm";
    if let Some(why) = skip_reason(provider) {
        eprintln!("skipping: {why}");
        return;
    }
    let mut p = plan(vec![Op::Tag]);
    p.latency_iterations = 50_000_000;
    p.max_duration = Duration::from_secs(1);
    let out = loopback(provider, p, None);
    let rows = out.driver.expect("driver");
    out.responder.expect("responder");
    assert!(rows.len() <= 1, "{rows:?}");
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    eprintln!(
        "stopped after {:?} with {} result(s)",
        out.elapsed,
        rows.len()
    );
}

#[test]
fn unknown_provider_is_named_in_the_error() {
    if let Err(e) = libfabric::library() {
        eprintln!("skipping: {e}");
        return;
    }
    let e = LibfabricEndpoint::open("nosuchprov", &plan(vec![Op::Tag]))
        .err()
        .expect("must fail");
    assert!(e.to_string().contains("nosuchprov"), "{e}");
}

#[test]
fn cuda_memory_without_a_gpu_gives_the_reason() {
    if let Err(e) = libfabric::library() {
        eprintln!("skipping: {e}");
        return;
    }
    let mut p = plan(vec![Op::Tag]);
    p.mem = MemKind::Cuda(0);
    match LibfabricEndpoint::open("tcp", &p) {
        Err(FabricError::Memory("cuda", why)) => {
            eprintln!("cuda: {why}");
            assert!(why.contains("libcuda") || why.contains("FI_HMEM"), "{why}");
        }
        Err(e) => panic!("expected a cuda memory error, got {e}"),
        Ok(_) => eprintln!("CUDA and FI_HMEM present: nothing to check"),
    }
}

#[test]
fn providers_and_library_are_listed() {
    match (libfabric::library(), libfabric::providers()) {
        (Ok(l), Ok(p)) => {
            eprintln!("{} {}: {} entries", l.path, l.version, p.len());
            assert!(!l.version.is_empty());
            assert!(libfabric::has_provider(&p, "tcp") || libfabric::has_provider(&p, "shm"));
        }
        (Err(e), _) | (_, Err(e)) => eprintln!("skipping: {e}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn one_size_plan(size: u64) -> ProbePlan {
    let mut p = plan(vec![Op::Tag]);
    p.sizes = vec![size];
    p.latency_iterations = 1000;
    p
}

/// The responder of `cross_check_with_fi_pingpong`, in a child process (like
/// fi_pingpong's server): PeerInfo goes over stdout/stdin as hex lines.
#[test]
#[ignore]
fn child_responder() {
    use std::io::BufRead;
    let (Ok(provider), Ok(size)) = (
        std::env::var("LF_CHILD_PROVIDER"),
        std::env::var("LF_CHILD_SIZE"),
    ) else {
        return;
    };
    let p = one_size_plan(size.parse().expect("size"));
    let mut ep = LibfabricEndpoint::open(&provider, &p).expect("open");
    let me = ep.local_info();
    println!("PEER {} {}", hex(&me.address), hex(&me.rma));
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).expect("stdin");
    let mut it = line.split_whitespace();
    let peer = PeerInfo {
        address: unhex(it.next().unwrap_or("")),
        rma: unhex(it.next().unwrap_or("")),
    };
    ep.connect(&peer).expect("connect");
    ep.run_responder(&p, &|| false).expect("responder");
}

/// Our probe with the responder in another process, for a fair comparison.
fn cross_process(provider: &str, size: u64) -> Result<Vec<SizeResult>, FabricError> {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--ignored", "--exact", "child_responder", "--nocapture"])
        .env("LF_CHILD_PROVIDER", provider)
        .env("LF_CHILD_SIZE", size.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let r = (|| {
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut peer = None;
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line.trim().strip_prefix("PEER ") {
                let mut it = rest.split_whitespace();
                peer = Some(PeerInfo {
                    address: unhex(it.next().unwrap_or("")),
                    rma: unhex(it.next().unwrap_or("")),
                });
                break;
            }
            line.clear();
        }
        let peer = peer.ok_or_else(|| FabricError::BadPeer("child printed no PEER line".into()))?;
        let p = one_size_plan(size);
        let mut ep = LibfabricEndpoint::open(provider, &p)?;
        let me = ep.local_info();
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{} {}", hex(&me.address), hex(&me.rma)).expect("write");
        ep.connect(&peer)?;
        ep.run_driver(&p, &|| false)
    })();
    let _ = child.wait();
    r
}

/// Cross-check against `fi_pingpong` on the same provider (loopback, port 47592).
/// Slow and needs the binary: `cargo test --test fabric_libfabric -- --ignored --nocapture`.
#[test]
#[ignore]
fn cross_check_with_fi_pingpong() {
    use std::process::Command;
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for provider in ["tcp", "shm"] {
        if let Some(why) = skip_reason(provider) {
            eprintln!("skipping: {why}");
            continue;
        }
        for size in [64u64 << 10, 1 << 20] {
            let args = [
                "-p",
                provider,
                "-e",
                "rdm",
                "-S",
                &size.to_string(),
                "-I",
                "1000",
            ];
            let server = match Command::new("fi_pingpong").args(args).spawn() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("skipping: fi_pingpong ({e})");
                    return;
                }
            };
            thread::sleep(Duration::from_secs(1));
            let client = Command::new("fi_pingpong")
                .args(args)
                .arg("127.0.0.1")
                .output()
                .expect("fi_pingpong client");
            let _ = server.wait_with_output();
            let text = String::from_utf8_lossy(&client.stdout);
            let rows = libfabric::parse_fi_pingpong(&text).expect("parse");
            let threads = loopback(provider, one_size_plan(size), None)
                .driver
                .expect("probe");
            let procs = cross_process(provider, size).expect("cross-process probe");
            for r in &rows {
                eprintln!(
                    "{provider} {size}: fi_pingpong {:.2} usec/xfer {:.1} MB/s",
                    r.usec_per_xfer, r.mb_per_s
                );
            }
            for (how, o) in [("threads", &threads[0]), ("processes", &procs[0])] {
                eprintln!(
                    "{provider} {size}: ours ({how}) p50 {:.2} us p99 {:.2} us, window bw {:.1} MB/s",
                    o.latency_p50_ns.unwrap_or(0) as f64 / 1e3,
                    o.latency_p99_ns.unwrap_or(0) as f64 / 1e3,
                    o.bandwidth_bps / 1e6
                );
            }
        }
    }
}

#[test]
fn tcp_loopback_contents_are_verified() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = skip_reason("tcp") {
        eprintln!("skipping: {why}");
        return;
    }
    let mut p = plan(vec![Op::Tag, Op::RmaWrite, Op::RmaRead]);
    p.verify = true;
    let out = loopback("tcp", p, None);
    let rows = out.driver.expect("driver");
    out.responder.expect("responder");
    print("tcp", &rows);
    assert_eq!(rows.len(), SIZES.len() * 3);
    assert!(
        rows.iter().all(|r| r.verify == Verify::Verified),
        "{rows:?}"
    );
}

#[test]
fn tcp_corrupted_contents_name_size_op_and_offset() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = skip_reason("tcp") {
        eprintln!("skipping: {why}");
        return;
    }
    for op in [Op::Tag, Op::RmaWrite, Op::RmaRead] {
        let mut p = plan(vec![op]);
        p.sizes = vec![64 << 10];
        p.verify = true;
        p.corrupt_received_byte = Some(777);
        let out = loopback("tcp", p, None);
        let e = out
            .driver
            .expect_err("a corrupted byte must fail the probe");
        let msg = e.to_string();
        eprintln!("{msg}");
        assert!(
            matches!(e, FabricError::Mismatch { op: o, size: 65536, offset: 777, .. } if o == op.name()),
            "{e:?}"
        );
        assert!(msg.contains(op.name()) && msg.contains("65536") && msg.contains("offset 777"));
        out.responder.expect("the responder ends cleanly");
    }
}
