//! bench/fabric: our fabric probe against the transports' own benchmarks, on
//! loopback, in one invocation, for 64 KiB, 1 MiB and 16 MiB:
//! - UCX tag bandwidth over UCX_TLS=tcp: `ucx_perftest -t tag_bw -e` vs our `Op::Tag`;
//! - UCX put bandwidth: `ucx_perftest -t ucp_put_bw -e` vs our `Op::RmaWrite`
//!   (`-e`: peer error handling on the endpoints, as ours have);
//! - libfabric provider tcp, FI_EP_RDM: `fi_pingpong -m tagged` (a ping-pong: its
//!   MB/sec is size / half round trip) vs our ping-pong (size / p50 half round
//!   trip); our windowed bandwidth is shown beside it, not compared.
//!
//! Both sides are separate processes (ours: this binary re-executed as
//! `--responder`); each figure is the best of `--repeats` runs with the same message
//! count on both sides. ucx_perftest prints MiB/s, fi_pingpong 10^6 B/s: every
//! figure is also shown in SI bytes/s. Goal: ours / reference ≥ 0.95.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use servescope_fabric::libfabric::{self, LibfabricEndpoint};
use servescope_fabric::ucx::{self, UcxEndpoint, UcxOptions};
use servescope_fabric::{Op, PeerInfo, ProbeEndpoint, ProbePlan, SizeResult, TransportTruth};

const SIZES: [u64; 3] = [64 << 10, 1 << 20, 16 << 20];
const GOAL: f64 = 0.95;
const TOOL_LIMIT: Duration = Duration::from_secs(90);

#[derive(Parser)]
struct Args {
    /// Short run: 64 MiB per measurement instead of 512 MiB
    #[arg(long)]
    quick: bool,
    /// Runs per measurement; the best is kept
    #[arg(long, default_value_t = 5)]
    repeats: u32,
    /// Message sizes in bytes, comma-separated (default: 64 KiB, 1 MiB, 16 MiB)
    #[arg(long, value_delimiter = ',', default_values_t = SIZES)]
    sizes: Vec<u64>,
    /// Messages in flight: ours, and ucx_perftest's -O
    #[arg(long, default_value_t = 16)]
    window: u32,
    /// Internal: serve as our probe's responder ("ucx" or "libfabric")
    #[arg(long, hide = true)]
    responder: Option<String>,
}

fn open(lib: &str, plan: &ProbePlan) -> Result<Box<dyn ProbeEndpoint>> {
    Ok(match lib {
        "ucx" => Box::new(UcxEndpoint::new(
            &UcxOptions {
                tls: Some("tcp".into()),
                net_devices: None,
            },
            plan,
        )?),
        "libfabric" => Box::new(LibfabricEndpoint::open("tcp", plan)?),
        other => bail!("unknown library `{other}` (ucx or libfabric)"),
    })
}

/// What both sides of our probe run: one size; UCX measures tag and put, libfabric
/// tag (with its ping-pong phase).
fn make_plan(lib: &str, size: u64, window: u32, windows: u32, latency: u32) -> ProbePlan {
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decode_peer(line: &str) -> Result<PeerInfo> {
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
fn responder(lib: &str) -> Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).context("reading the plan")?;
    let plan = decode_plan(lib, &line)?;
    let mut ep = open(lib, &plan)?;
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

/// A child process, killed (and reaped) when dropped, and when this process dies.
struct Kid(Child, String);

impl Kid {
    fn spawn(mut cmd: Command, what: &str) -> Result<Kid> {
        // SAFETY: prctl is async-signal-safe and the closure touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {what}"))?;
        Ok(Kid(child, what.to_string()))
    }

    fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        let t = Instant::now();
        loop {
            if let Some(st) = self.0.try_wait()? {
                return Ok(st);
            }
            if t.elapsed() > limit {
                let _ = self.0.kill();
                bail!("{} still running after {limit:?}: killed", self.1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Our probe: responder child + driver here. Returns the one-size rows.
fn ours(lib: &str, plan: &ProbePlan) -> Result<(Vec<f64>, TransportTruth)> {
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

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("picking a free port")?;
    Ok(l.local_addr()?.port())
}

/// Whether something listens on TCP `port` (any address), from /proc/net/tcp{,6}.
fn listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|s| {
            s.lines().skip(1).any(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                c.len() > 3 && c[1].ends_with(&want) && c[3] == "0A"
            })
        })
    })
}

fn slurp(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Server listening on `port`, then client; returns the client's stdout.
fn server_client(
    tool: &str,
    env: &[(&str, &str)],
    port: u16,
    srv: &str,
    cli: &str,
) -> Result<String> {
    let cmd = |args: &str| {
        let mut c = Command::new(tool);
        c.envs(env.iter().copied())
            .args(args.split_whitespace())
            .stdin(Stdio::null());
        c
    };
    let mut s = cmd(srv);
    s.stdout(Stdio::null()).stderr(Stdio::null());
    let mut server = Kid::spawn(s, &format!("{tool} server"))?;
    let t = Instant::now();
    while !listening(port) {
        if let Some(st) = server.0.try_wait()? {
            bail!("{tool} server exited with {st} before listening");
        }
        if t.elapsed() > Duration::from_secs(10) {
            bail!("{tool} server not listening on {port} after 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut c = cmd(cli);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut client = Kid::spawn(c, &format!("{tool} client"))?;
    let out = slurp(client.0.stdout.take().context("client stdout")?);
    let err = slurp(client.0.stderr.take().context("client stderr")?);
    let st = client.wait(TOOL_LIMIT)?;
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let _ = server.wait(Duration::from_secs(5));
    if !st.success() {
        bail!("{tool} client exited with {st}: {}", err.trim());
    }
    Ok(out)
}

fn perftest(test: &str, size: u64, n: u32, window: u32) -> Result<Vec<f64>> {
    let (port, w) = (free_port()?, (n / 10).max(2));
    // -e: endpoints with peer error handling (UCP_ERR_HANDLING_MODE_PEER), as ours
    // are so that a peer dying mid-probe is a clean error. It costs bandwidth on tcp
    // (measured here: tag_bw at 1 MiB 6.5 GB/s without, 4.6 GB/s with), so the
    // reference must pay it too.
    let a = format!("-t {test} -s {size} -n {n} -w {w} -O {window} -e -v -p {port}");
    let env = [("UCX_TLS", "tcp")];
    let out = server_client("ucx_perftest", &env, port, &a, &format!("{a} 127.0.0.1"))?;
    let r = ucx::parse_perftest(&out).with_context(|| format!("no result in {out:?}"))?;
    Ok(vec![r.bandwidth_overall_bps])
}

fn pingpong(size: u64, iters: u32) -> Result<Vec<f64>> {
    let port = free_port()?;
    let a = format!("-p tcp -e rdm -m tagged -S {size} -I {iters}");
    let (srv, cli) = (format!("{a} -B {port}"), format!("{a} -P {port} 127.0.0.1"));
    let out = server_client("fi_pingpong", &[], port, &srv, &cli)?;
    let rows = libfabric::parse_fi_pingpong(&out)?;
    let r = rows.iter().find(|r| r.bytes == size);
    Ok(vec![r.context("no row for the size")?.bandwidth_bps()])
}

type Runs = Option<Result<Vec<f64>>>;

/// Prints one run on stderr and keeps the elementwise best (max) so far in `slot`;
/// the slot holds an error only while every run failed.
fn keep(slot: &mut Runs, label: &str, run: Result<Vec<f64>>) {
    match &run {
        Ok(v) => eprintln!(
            "  {label}: {}",
            v.iter().map(|x| si(*x)).collect::<Vec<_>>().join(" | ")
        ),
        Err(e) => eprintln!("  {label}: {e:#}"),
    }
    *slot = Some(match (slot.take(), run) {
        (Some(Ok(b)), Ok(v)) => Ok(b.iter().zip(&v).map(|(a, b)| a.max(*b)).collect()),
        (Some(Ok(b)), Err(_)) => Ok(b),
        (_, r) => r,
    });
}

fn si(bps: f64) -> String {
    match bps {
        b if b >= 1e9 => format!("{:.3} GB/s", b / 1e9),
        b => format!("{:.1} MB/s", b / 1e6),
    }
}

fn size_label(s: u64) -> String {
    match s >= 1 << 20 {
        true => format!("{} MiB", s >> 20),
        false => format!("{} KiB", s >> 10),
    }
}

/// (size, reference, ours, ours' extra figure) with errors as text.
type Row = (u64, Result<f64, String>, Result<f64, String>, Option<f64>);

fn row(size: u64, r: &Result<Vec<f64>>, o: &Result<Vec<f64>>, i: usize, x: bool) -> Row {
    let cell = |r: &Result<Vec<f64>>, i: usize| match r {
        Ok(v) => v.get(i).copied().ok_or_else(|| "no figure".to_string()),
        Err(e) => Err(format!("{e:#}")),
    };
    let extra = x.then(|| cell(o, 0).ok()).flatten();
    (size, cell(r, 0), cell(o, i), extra)
}

/// Prints one comparison; returns (goals met, comparisons made).
fn table(title: &str, unit: (&str, f64), rows: &[Row], extra: Option<&str>) -> (u32, u32) {
    println!("\n{title}");
    let x = extra.map_or(String::new(), |e| format!("  {e}"));
    let h = "   size    reference (native)     reference          ours  ours/ref  goal ≥";
    println!("  {h} {GOAL}×{x}");
    let (mut met, mut made) = (0, 0);
    for (size, r, o, x) in rows {
        let (rn, rs) = match r {
            Ok(v) => (format!("{:.1} {}", v / unit.1, unit.0), si(*v)),
            Err(_) => ("-".into(), "-".into()),
        };
        let ours = o.as_ref().map_or("-".into(), |v| si(*v));
        let (ratio, goal) = match (r, o) {
            (Ok(r), Ok(o)) => {
                made += 1;
                met += u32::from(o / r >= GOAL);
                let g = if o / r >= GOAL { "met" } else { "NOT met" };
                (format!("{:.3}", o / r), g)
            }
            _ => ("-".into(), "-"),
        };
        let x = x.map_or(String::new(), |v| format!("  {:>12}", si(v)));
        let sz = size_label(*size);
        println!("  {sz:>7}  {rn:>20}  {rs:>12}  {ours:>12}  {ratio:>8}  {goal:<7}{x}");
        for (who, c) in [("reference", r), ("ours", o)] {
            if let Err(e) = c {
                println!("           {who}: {e}");
            }
        }
    }
    (met, made)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(lib) = &args.responder {
        return responder(lib);
    }
    let budget: u64 = if args.quick { 64 << 20 } else { 512 << 20 };
    let (w, runs) = (args.window.max(1), args.repeats.max(1));
    // Messages per measurement (both sides): the byte budget, at least 16 (one window).
    let msgs = |s: u64| (budget / s).clamp(16, 1 << 20) as u32;
    println!(
        "bench/fabric: loopback (127.0.0.1), both sides separate processes, host memory, \
         window {w}, {} MiB per measurement, same message count on both sides; each figure \
         is the best of {runs} interleaved runs (each run on stderr).\n\
         Units: ucx_perftest prints MiB/s (2^20 B/s), fi_pingpong MB/sec (10^6 B/s); \
         'reference' and 'ours' are SI bytes/s (MB = 10^6 B, GB = 10^9 B).\n\
         Ours: Op::Tag streams with {w} sends in flight while the responder keeps 64 receives \
         posted (from before the first send), acked once per stream; Op::RmaWrite keeps a \
         window in flight, flushed after the warm-up and at the end; ucx_perftest streams with \
         at most {w} outstanding and flushes at the end. Our UCX payload buffers are fresh \
         anonymous memory as ucx_perftest's are (its sender never writes them; the agent's \
         probes write theirs first).\n\
         fi_pingpong is a ping-pong: its MB/sec is size / mean half round trip, compared \
         with ours = size / p50 half round trip over the same number of round trips; our \
         windowed bandwidth is shown beside it, not compared.",
        budget >> 20
    );
    let tool = |name: &str, pkg: &str| -> Runs {
        let why = format!("skipped: {name} not found (install {pkg})");
        (!on_path(name)).then(|| Err(anyhow::anyhow!(why)))
    };
    let (mut ucx_truth, mut lf_truth) = (TransportTruth::default(), TransportTruth::default());
    let (mut tag, mut put, mut lf) = (Vec::new(), Vec::new(), Vec::new());
    for &size in &args.sizes {
        if size == 0 || size > 1 << 30 {
            bail!("--sizes: {size} bytes is outside 1 B … 1 GiB");
        }
        let (n, pp, l) = (msgs(size), msgs(2 * size), size_label(size));
        let ucx_plan = make_plan("ucx", size, w, n.div_ceil(w), 0);
        let lf_plan = make_plan("libfabric", size, w, n.div_ceil(w), pp);
        // Ours UCX (tag, put), tag_bw, ucp_put_bw, ours libfabric (window, ping-pong),
        // fi_pingpong; runs interleaved so that a noisy moment hits every column.
        let pt = || tool("ucx_perftest", "ucx-utils");
        let mut s: [Runs; 5] = [None, pt(), pt(), None, tool("fi_pingpong", "libfabric-bin")];
        let (have_pt, have_fp) = (s[1].is_none(), s[4].is_none());
        for rep in 1..=runs {
            let mut k =
                |i: usize, what: &str, run| keep(&mut s[i], &format!("{l} #{rep} {what}"), run);
            let run = ours("ucx", &ucx_plan).map(|(v, t)| {
                ucx_truth = t;
                v
            });
            k(0, "ours UCX tag | put", run);
            for (i, test) in [(1, "tag_bw"), (2, "ucp_put_bw")] {
                if have_pt {
                    k(
                        i,
                        &format!("ucx_perftest {test}"),
                        perftest(test, size, n, w),
                    );
                }
            }
            let run = ours("libfabric", &lf_plan).map(|(v, t)| {
                lf_truth = t;
                v
            });
            k(3, "ours libfabric window | ping-pong", run);
            if have_fp {
                k(4, "fi_pingpong", pingpong(size, pp));
            }
        }
        let [o_ucx, r_tag, r_put, o_lf, r_pp] =
            s.map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("not run"))));
        tag.push(row(size, &r_tag, &o_ucx, 0, false));
        put.push(row(size, &r_put, &o_ucx, 1, false));
        lf.push(row(size, &r_pp, &o_lf, 1, true));
    }
    let lanes = format!("UCX_TLS=tcp, our lanes {}", ucx_truth.lanes.join(","));
    let (mib, mb) = (("MiB/s", 1024.0 * 1024.0), ("MB/sec", 1e6));
    let t1 = format!("UCX tag: ucx_perftest -t tag_bw -O {w} -e vs our Op::Tag [{lanes}]");
    let t2 = format!("UCX put: ucx_perftest -t ucp_put_bw -O {w} -e vs our Op::RmaWrite [{lanes}]");
    let t3 = format!(
        "libfabric ping-pong: fi_pingpong -m tagged vs ours [provider {}]",
        lf_truth.provider
    );
    let (mut met, mut made) = (0, 0);
    for (m, c) in [
        table(&t1, mib, &tag, None),
        table(&t2, mib, &put, None),
        table(&t3, mb, &lf, Some("ours windowed (not compared)")),
    ] {
        (met, made) = (met + m, made + c);
    }
    println!("\ngoal ours/ref ≥ {GOAL}×: met in {met} of {made} comparisons");
    Ok(())
}
