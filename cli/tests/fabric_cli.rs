//! `servescope fabric` against real agents on loopback: probes over libfabric
//! (tcp, shm) and UCX (tcp, posix shared memory) with Debian's libfabric1/libucx0,
//! a responder killed mid-probe, absurd parameters refused by name, the preflight
//! check, and two agents in two network namespaces joined by a veth pair.
//! Each part prints why it skipped when its library or privilege is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{agent_bin, bin, both_streams as text, fabric_probe, free_port, Kill};

/// An agent (killed when dropped) and its address.
struct Agent(Kill, String);

fn start_agent(tok: &Path, prefix: &[&str], listen: &str) -> Agent {
    let ab = agent_bin().expect("agent binary");
    let mut c = Command::new(
        prefix
            .first()
            .copied()
            .unwrap_or(ab.to_str().expect("path")),
    );
    if !prefix.is_empty() {
        c.args(&prefix[1..]).arg(&ab);
    }
    let child = c
        .args([
            "--listen",
            listen,
            "--metrics-listen",
            "off",
            "--token-file",
        ])
        .arg(tok)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agent");
    // Ready when the port accepts (inside a namespace we just wait).
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if prefix.is_empty() && std::net::TcpStream::connect(listen).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if !prefix.is_empty() && t0.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    Agent(Kill(child), listen.to_string())
}

fn probe(tok: &Path, a: &Agent, b: &Agent, extra: &[&str]) -> Output {
    fabric_probe(&mut bin(), tok, &a.1, &b.1)
        .args(extra)
        .output()
        .expect("run servescope")
}

fn setup() -> Option<(tempfile::TempDir, PathBuf)> {
    if agent_bin().is_none() {
        println!("skipping: servescope-agent binary not built beside servescope");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = dir.path().join("token");
    std::fs::write(&tok, "fabric-token\n").expect("token");
    // The agent refuses a token file every user can read.
    std::fs::set_permissions(&tok, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("token mode");
    Some((dir, tok))
}

/// A short probe: a window of 8, 10 bandwidth and 20 latency iterations per size.
const QUICK: &[&str] = &[
    "--window",
    "8",
    "--iterations",
    "10",
    "--latency-iterations",
    "20",
];

#[test]
fn loopback_probes_over_libfabric_and_ucx() {
    let Some((_d, tok)) = setup() else { return };
    let a = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    let b = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    let cases: &[(&str, &str, &str)] = &[
        ("libfabric:tcp", "tag,rma_write,rma_read", "provider=tcp"),
        ("libfabric:shm", "tag,rma_write,rma_read", "provider=shm"),
        ("ucx:tcp", "tag,rma_write,rma_read", "lanes=[tcp/"),
        ("ucx:posix,self", "tag", "lanes=["),
    ];
    for (tr, ops, truth) in cases {
        let o = probe(
            &tok,
            &a,
            &b,
            &[
                &["--transport", tr, "--ops", ops, "--sizes", "4K,64K,1M"],
                QUICK,
            ]
            .concat(),
        );
        let t = text(&o);
        if t.contains("unavailable") || t.contains("not found") {
            println!("skipping {tr}: {t}");
            continue;
        }
        assert!(o.status.success(), "{tr}: {t}");
        for size in ["4 KiB", "64 KiB", "1 MiB"] {
            assert!(t.contains(size), "{tr}: no {size} row\n{t}");
        }
        assert!(
            t.contains(truth),
            "{tr}: transport truth missing `{truth}`\n{t}"
        );
        assert!(
            t.contains("counters moved"),
            "{tr}: no counter evidence\n{t}"
        );
        for op in ops.split(',') {
            assert!(t.contains(op), "{tr}: no {op} result\n{t}");
        }
    }
}

/// `--verify` on host memory: every row says its contents were checked; without
/// it, none does; GPU memory (both sides, or GPU → host) without a GPU is refused
/// with the reason.
#[test]
fn verified_contents_and_gpu_refusal() {
    let Some((_d, tok)) = setup() else { return };
    let a = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    let b = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    let small = [
        "--sizes",
        "4K,1M",
        "--iterations",
        "4",
        "--latency-iterations",
        "4",
    ];
    for tr in ["libfabric:tcp", "ucx:tcp"] {
        let ops = ["--transport", tr, "--ops", "tag,rma_write,rma_read"];
        let with: Vec<&str> = ops
            .iter()
            .chain(&small)
            .copied()
            .chain(["--verify"])
            .collect();
        let o = probe(&tok, &a, &b, &with);
        let t = text(&o);
        if t.contains("unavailable") || t.contains("not found") {
            println!("skipping {tr}: {t}");
            continue;
        }
        assert!(o.status.success(), "{tr}: {t}");
        let rows = t.lines().filter(|l| l.ends_with("  verified")).count();
        assert_eq!(rows, 6, "{tr}: every row verified\n{t}");
        assert!(t.contains("contents"), "{tr}: no contents column\n{t}");
        let without: Vec<&str> = ops.iter().chain(&small).copied().collect();
        let t = text(&probe(&tok, &a, &b, &without));
        assert!(
            !t.contains("verified"),
            "{tr}: host memory is not checked by default\n{t}"
        );
    }
    for mem in [
        &["--mem", "cuda"][..],
        &["--mem-driver", "cuda:0", "--mem-responder", "host"],
    ] {
        let args: Vec<&str> = ["--transport", "ucx:tcp"]
            .iter()
            .chain(&small)
            .chain(mem)
            .copied()
            .collect();
        let o = probe(&tok, &a, &b, &args);
        let t = text(&o);
        if o.status.success() {
            println!("GPU path ran ({mem:?}): a GPU and CUDA-capable UCX are here\n{t}");
            assert!(
                t.contains("verified"),
                "{mem:?}: GPU memory is checked by default\n{t}"
            );
        } else {
            assert!(
                t.contains("cuda") && (t.contains("CUDA") || t.contains("libcuda")),
                "{mem:?}: refusal without a reason\n{t}"
            );
        }
    }
}

#[test]
fn killed_responder_gives_a_clean_error_and_keeps_what_was_measured() {
    let Some((_d, tok)) = setup() else { return };
    let a = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    let mut b = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    let child = fabric_probe(&mut bin(), &tok, &a.1, &b.1)
        .args([
            "--transport",
            "libfabric:tcp",
            "--sizes",
            "64K,1M",
            "--iterations",
            "2000",
            "--duration-per-size",
            "20s",
            "--latency-iterations",
            "0",
            "--peer-timeout",
            "3s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe");
    std::thread::sleep(Duration::from_secs(5));
    let _ = b.0 .0.kill();
    let o = child.wait_with_output().expect("probe output");
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("probe ended early"), "{t}");
    assert!(
        t.contains("waiting for the responder") || t.contains("connection lost"),
        "{t}"
    );
    assert!(!t.contains("panicked"), "{t}");
}

#[test]
fn absurd_parameters_are_refused_by_name() {
    let Some((_d, tok)) = setup() else { return };
    let a = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    let b = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    for (args, name) in [
        (vec!["--sizes", "0"], "size `0`"),
        (vec!["--sizes", "1T"], "sizes"),
        (vec!["--max-duration=-5s"], "--max-duration"),
        (vec!["--window", "0"], "--window"),
        (vec!["--iterations", "100000000"], "iterations"),
        (vec!["--transport", "nccl"], "bad transport"),
        (vec!["--mem", "hbm"], "--mem"),
        (vec!["--mem-responder", "hbm"], "--mem-responder"),
        (vec!["--verify", "--no-verify"], "--no-verify"),
    ] {
        let o = probe(&tok, &a, &b, &args);
        let t = text(&o);
        assert!(!o.status.success(), "{args:?}: {t}");
        assert!(t.contains(name), "{args:?}: expected `{name}` in\n{t}");
    }
    // The refused probes left no agent busy.
    let o = probe(
        &tok,
        &a,
        &b,
        &[
            "--sizes",
            "4K",
            "--iterations",
            "2",
            "--latency-iterations",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn check_reports_providers_and_findings() {
    let Some((_d, tok)) = setup() else { return };
    let a = start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port()));
    let o = bin()
        .args(["fabric", "check", "--agent", &a.1, "--token-file"])
        .arg(&tok)
        .output()
        .expect("check");
    let t = text(&o);
    assert!(t.contains("== "), "{t}");
    assert!(t.contains("no EFA devices") || t.contains("efa"), "{t}");
    assert!(t.contains("[info]") || t.contains("[WARN]"), "{t}");
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn two_agents_in_two_network_namespaces() {
    let Some((_d, tok)) = setup() else { return };
    let id = std::process::id() % 10000;
    let (n1, n2) = (format!("ssf{id}a"), format!("ssf{id}b"));
    let (v1, v2) = (format!("vf{id}a"), format!("vf{id}b"));
    let made = sh(&["ip", "netns", "add", &n1])
        && sh(&["ip", "netns", "add", &n2])
        && sh(&[
            "ip", "link", "add", &v1, "type", "veth", "peer", "name", &v2,
        ])
        && sh(&["ip", "link", "set", &v1, "netns", &n1])
        && sh(&["ip", "link", "set", &v2, "netns", &n2])
        && sh(&["ip", "-n", &n1, "addr", "add", "10.211.0.1/24", "dev", &v1])
        && sh(&["ip", "-n", &n2, "addr", "add", "10.211.0.2/24", "dev", &v2])
        && sh(&["ip", "-n", &n1, "link", "set", &v1, "up"])
        && sh(&["ip", "-n", &n2, "link", "set", &v2, "up"])
        && sh(&["ip", "-n", &n1, "link", "set", "lo", "up"])
        && sh(&["ip", "-n", &n2, "link", "set", "lo", "up"]);
    let cleanup = || {
        sh(&["ip", "netns", "del", &n1]);
        sh(&["ip", "netns", "del", &n2]);
    };
    if !made {
        cleanup();
        println!("skipping: cannot create network namespaces here (needs root and iproute2)");
        return;
    }
    let a = start_agent(&tok, &["ip", "netns", "exec", &n1], "10.211.0.1:7781");
    let b = start_agent(&tok, &["ip", "netns", "exec", &n2], "10.211.0.2:7782");
    std::thread::sleep(Duration::from_secs(1));
    // The CLI runs in the first namespace: it reaches its own agent and, over the
    // veth, the other one.
    let mut ip = Command::new("ip");
    ip.args(["netns", "exec", &n1])
        .arg(env!("CARGO_BIN_EXE_servescope"));
    let o = fabric_probe(&mut ip, &tok, &a.1, &b.1)
        .args(["--transport", "libfabric:tcp", "--sizes", "64K,1M"])
        .args(QUICK)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("probe in netns");
    let t = text(&o);
    drop((a, b));
    cleanup();
    if t.contains("no provider") || t.contains("unavailable") {
        println!("skipping: libfabric tcp not usable in the namespaces: {t}");
        return;
    }
    assert!(o.status.success(), "{t}");
    assert!(t.contains("1 MiB"), "{t}");
    // The bytes crossed the veth pair, and the evidence says so.
    assert!(
        t.contains(&format!("netdev:{v1}/")) || t.contains(&format!("netdev:{v2}/")),
        "{t}"
    );
}

#[test]
fn matrix_of_three_agents_writes_the_heatmap() {
    let Some((d, tok)) = setup() else { return };
    let ags: Vec<Agent> = (0..3)
        .map(|_| start_agent(&tok, &[], &format!("127.0.0.1:{}", free_port())))
        .collect();
    let html = d.path().join("m.html");
    let db = d.path().join("m.db");
    let mut c = bin();
    c.args(["fabric", "matrix", "--token-file"]).arg(&tok);
    for a in &ags {
        c.args(["--agent", &a.1]);
    }
    let o = c
        .args([
            "--transport",
            "libfabric:tcp",
            "--sizes",
            "64K",
            "--window",
            "4",
            "--iterations",
            "5",
            "--latency-iterations",
            "5",
            "-o",
        ])
        .arg(&html)
        .arg("--db")
        .arg(&db)
        .output()
        .expect("matrix");
    let t = text(&o);
    if t.contains("unavailable") {
        println!("skipping: {t}");
        return;
    }
    assert!(o.status.success(), "{t}");
    assert!(t.contains("median"), "{t}");
    let page = std::fs::read_to_string(&html).expect("heatmap");
    assert!(page.contains("<svg") && page.contains("GB/s"), "{page}");
    // Six ordered pairs stored.
    let store = servescope_coordinator::Store::open(&db).expect("store");
    let runs = store.runs().expect("runs");
    let run = runs
        .iter()
        .find(|r| r.kind == servescope_coordinator::store::RunKind::FabricMatrix)
        .expect("matrix run");
    assert_eq!(store.fabric_probes(run.id).expect("probes").len(), 6);
}
