//! Our probe in the benchmark: both sides separate processes, this binary
//! re-executed as `--responder`, the plan and the peers' addresses exchanged as text
//! lines over the child's stdin/stdout.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use servescope_fabric::libfabric::LibfabricEndpoint;
use servescope_fabric::ucx::{UcxEndpoint, UcxOptions};
use servescope_fabric::{Op, PeerInfo, ProbeEndpoint, ProbePlan, SizeResult, TransportTruth};

use crate::kid::Kid;

fn open(lib: &str, plan: &ProbePlan) -> Result<Box<dyn ProbeEndpoint>> {
    Ok(match lib {
        "ucx" => Box::new(UcxEndpoint::new(
            &UcxOptions {
                tls: Some("tcp".into()),
                net_devices: None,
                library: None,
            },
            plan,
        )?),
        "libfabric" => Box::new(LibfabricEndpoint::open("tcp", plan)?),
        other => bail!("unknown library `{other}` (ucx or libfabric)"),
    })
}

/// What both sides of our probe run: one size; UCX measures tag and put, libfabric
/// tag (with its ping-pong phase).
pub(crate) fn make_plan(
    lib: &str,
    size: u64,
    window: u32,
    windows: u32,
    latency: u32,
) -> ProbePlan {
    let ops = match lib {
        "ucx" => vec![Op::Tag, Op::RmaWrite],
        _ => vec![Op::Tag],
    };
    ProbePlan {
        sizes: vec![size],
        ops,
        window,
        iterations: windows.max(1),
        latency_iterations: latency,
        duration_per_size: Duration::from_secs(60),
        max_duration: Duration::from_secs(120),
        // Like for like: ucx_perftest's buffers come from ucp_mem_map(ALLOCATE) and its
        // sender never writes them (on tcp it copies the kernel's zero page); the
        // agent's probes write theirs (real memory; UCX put over tcp 8–10 % slower).
        touch_payload: lib != "ucx",
        ..ProbePlan::default()
    }
}

fn encode_plan(p: &ProbePlan) -> String {
    let (size, w) = (p.buffer_bytes(), p.window);
    format!("PLAN {size} {w} {} {}", p.iterations, p.latency_iterations)
}

fn decode_plan(lib: &str, line: &str) -> Result<ProbePlan> {
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("malformed plan line {line:?}"))?;
    let [size, w, it, lat] = v[..] else {
        bail!("malformed plan line {line:?}");
    };
    let n = |x: u64| u32::try_from(x).context("plan number out of range");
    Ok(make_plan(lib, size, n(w)?, n(it)?, n(lat)?))
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn decode_peer(line: &str) -> Result<PeerInfo> {
    let unhex = |s: &str| {
        let byte = |i: usize| u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or("-"), 16);
        let v: Result<Vec<u8>, _> = (0..s.len().div_ceil(2)).map(byte).collect();
        v.with_context(|| format!("bad hex {s:?} from the peer"))
    };
    let mut it = line.split_whitespace();
    let address = unhex(it.next().context("no address in the peer line")?)?;
    let rma = unhex(it.next().unwrap_or(""))?;
    Ok(PeerInfo { address, rma })
}

/// The child side: plan on stdin, address out on stdout, the driver's address in.
pub(crate) fn responder(lib: &str) -> Result<()> {
    serve_responder(|line| {
        let plan = decode_plan(lib, line)?;
        Ok((open(lib, &plan)?, plan))
    })
}

/// A responder child's exchange with its driver: reads the plan line, opens the
/// endpoint with `open`, writes `PEER <address> <rma>`, reads the driver's address,
/// connects and serves the plan.
pub(crate) fn serve_responder<E: ProbeEndpoint + ?Sized>(
    open: impl FnOnce(&str) -> Result<(Box<E>, ProbePlan)>,
) -> Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).context("reading the plan")?;
    let (mut ep, plan) = open(&line)?;
    let me = ep.local_info();
    let mut out = std::io::stdout().lock();
    writeln!(out, "PEER {} {}", hex(&me.address), hex(&me.rma))?;
    out.flush()?;
    line.clear();
    stdin
        .read_line(&mut line)
        .context("reading the driver's address")?;
    ep.connect(&decode_peer(&line)?)?;
    ep.run_responder(&plan, &|| false)?;
    Ok(())
}

/// Our probe: responder child + driver here. Returns the one-size rows.
pub(crate) fn ours(lib: &str, plan: &ProbePlan) -> Result<(Vec<f64>, TransportTruth)> {
    let exe = std::env::current_exe().context("locating this benchmark's binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["--responder", lib])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut kid = Kid::spawn(cmd, "our responder")?;
    let mut stdin = kid.0.stdin.take().context("responder stdin")?;
    let stdout = kid.0.stdout.take().context("responder stdout")?;
    writeln!(stdin, "{}", encode_plan(plan)).context("sending the plan")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if let Some(rest) = line.strip_prefix("PEER ") {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .context("our responder gave no address within 20 s")?;
    let mut ep = open(lib, plan)?;
    let me = ep.local_info();
    writeln!(stdin, "{} {}", hex(&me.address), hex(&me.rma)).context("to the responder")?;
    stdin.flush()?;
    ep.connect(&decode_peer(&line)?)?;
    let rows = ep.run_driver(plan, &|| false)?;
    let st = kid.wait(Duration::from_secs(15))?;
    if !st.success() {
        bail!("our responder exited with {st}");
    }
    // Per row: windowed bandwidth, then size / p50 half round trip when measured.
    let pp = |r: &SizeResult| {
        r.latency_p50_ns
            .filter(|&n| n > 0)
            .map(|n| r.size as f64 * 1e9 / n as f64)
    };
    let v = rows
        .iter()
        .flat_map(|r| std::iter::once(r.bandwidth_bps).chain(pp(r)))
        .collect();
    Ok((v, ep.truth()))
}
