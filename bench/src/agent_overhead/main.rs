//! bench/agent_overhead: runs `servescope-agent` at 100 ms sampling for 60 s with a
//! client streaming everything it produces, and prints its CPU as % of one core and
//! its peak RSS — beside the same figures for `nvidia-smi dmon -d 1` measured over
//! the same window when nvidia-smi exists (the reference). Goal: ≤ 0.5 % of a core
//! and ≤ 30 MiB.
//!
//! It also prints the GPU collector's cost per GPU (its threads' CPU, and the NVML
//! call time per GPU from the agent's self-telemetry) and projects a p5 node — 8
//! GPUs and 32 EFA ports — against ≤ 0.5 % of one core, the RDMA part measured on
//! a second agent reading the p5 sysfs fixture (written to a temp dir) with NVML
//! off. `--window-cmd CMD` runs CMD (`sh -c`) as the window opens; the window then
//! lasts until it exits (at least `--seconds`), e.g. one cold start on the GPU.
//! Before the window it waits (at most `--burst-wait-seconds`) until no GPU is in a
//! cold-start burst, and it says whether a burst overlapped the window.

mod bursts;
#[path = "../procstat.rs"]
mod procstat;
mod selfcost;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use procstat::{Measured, Snapshot};
use selfcost::Seen;
use servescope_agent::collect::rdma::fixture::{write_p5_tree, P5FixtureOptions};
use servescope_proto::now_ns;

use anyhow::{bail, Context};
use clap::Parser;
use servescope_coordinator::orchestration::connect::connect;
use servescope_coordinator::AgentEndpoint;
use servescope_proto::v1::{telemetry_message, StreamTelemetryRequest};

#[derive(Parser)]
struct Args {
    /// The agent binary (default: servescope-agent next to this benchmark)
    #[arg(long)]
    agent_bin: Option<PathBuf>,
    /// Measurement window in seconds (after the warm-up)
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds between the agent's start and the window (e.g. longer to let a
    /// burst over a process that was already serving end first)
    #[arg(long, default_value_t = 3)]
    warmup_seconds: u64,
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Run this (`sh -c`) as the window opens; the window lasts until it exits
    /// (at least --seconds, at most 600 s)
    #[arg(long)]
    window_cmd: Option<String>,
    /// Where the window command's stdout and stderr go (default: discarded)
    #[arg(long)]
    window_cmd_log: Option<PathBuf>,
    /// After the warm-up, wait at most this long for no GPU to be in a cold-start
    /// burst before the window opens
    #[arg(long, default_value_t = 60)]
    burst_wait_seconds: u64,
    /// Skip the second agent on the p5 sysfs fixture (no RDMA projection)
    #[arg(long)]
    no_rdma_fixture: bool,
    /// Extra arguments for the agent (e.g. --sysfs-root DIR)
    #[arg(last = true)]
    agent_args: Vec<String>,
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The p5 goal: the whole agent within this % of one core.
const GOAL_PCT: f64 = 0.5;
/// Its share per GPU.
const GOAL_PER_GPU_PCT: f64 = 0.06;
/// A p5: GPUs and EFA ports.
const P5_GPUS: f64 = 8.0;

/// Starts an agent on loopback with `args`; returns it and its gRPC address.
fn start_agent(bin: &Path, token_file: &Path, args: &[String]) -> anyhow::Result<(Kill, String)> {
    let mut child = Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--token-file",
        ])
        .arg(token_file)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("agent stdout")?;
    let agent = Kill(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .with_context(|| format!("agent did not report its address: {line:?}"))?
        .to_string();
    Ok((agent, addr))
}

/// A client that streams everything, as `servescope record` would, into `seen`.
fn stream(addr: String, seen: Arc<Mutex<Seen>>) -> std::thread::JoinHandle<anyhow::Result<()>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let ep = AgentEndpoint::new(addr, Some("bench-token".into()));
        rt.block_on(async move {
            let mut c = connect(&ep).await?;
            let mut s = c
                .stream_telemetry(StreamTelemetryRequest {
                    live_only: true,
                    // As `servescope record` streams (its session's default).
                    max_delay_ms: u32::try_from(
                        servescope_coordinator::orchestration::session::DEFAULT_MAX_DELAY
                            .as_millis(),
                    )
                    .unwrap_or(500),
                    ..Default::default()
                })
                .await?
                .into_inner();
            while let Some(m) = s.message().await? {
                if let Some(telemetry_message::Body::Sample(x)) = &m.body {
                    seen.lock().unwrap_or_else(|e| e.into_inner()).add(x);
                }
            }
            anyhow::Ok(())
        })
    })
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let bin = match a.agent_bin {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("exe dir")?
            .join("servescope-agent"),
    };
    if !bin.exists() {
        bail!("agent binary {} not found: build it (cargo build --release -p servescope-agent) or pass --agent-bin", bin.display());
    }
    let dir = std::env::temp_dir().join(format!("servescope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let token_file = dir.join("token");
    std::fs::write(&token_file, "bench-token\n")?;
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let mut args = vec![
        "--sample-interval-ms".to_string(),
        a.interval_ms.to_string(),
    ];
    args.extend(a.agent_args.iter().cloned());
    let (agent, addr) = start_agent(&bin, &token_file, &args)?;
    let pid = agent.0.id();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let streamer = stream(addr, Arc::clone(&seen));

    // The RDMA part of the projection: a second agent on the p5 sysfs fixture
    // (8 × 4 EFA devices), NVML, kmsg and the startup watch off.
    let fixture = if a.no_rdma_fixture {
        None
    } else {
        let tree = dir.join("p5-sysfs");
        write_p5_tree(&tree, &P5FixtureOptions::default()).context("writing the p5 fixture")?;
        let args: Vec<String> = [
            "--sysfs-root",
            &tree.to_string_lossy(),
            "--nvml-lib",
            &dir.join("no-nvml.so").to_string_lossy(),
            "--no-kmsg",
            "--no-startup-watch",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Some(start_agent(&bin, &token_file, &args)?.0)
    };

    // The reference, over the same window, when a GPU is present.
    let dmon = Command::new("nvidia-smi")
        .args(["dmon", "-d", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(Kill);

    std::thread::sleep(Duration::from_secs(a.warmup_seconds));
    let (waited, quiet) = bursts::wait_quiet(&seen, Duration::from_secs(a.burst_wait_seconds));
    let snap = Snapshot::take(pid)?;
    let fixture_snap = fixture
        .as_ref()
        .map(|f| Snapshot::take(f.0.id()))
        .transpose()?;
    let dmon_snap = dmon.as_ref().and_then(|k| Snapshot::take(k.0.id()).ok());
    let t0_ns = now_ns();
    let started = Instant::now();
    let mut cmd = match &a.window_cmd {
        Some(c) => {
            let (out, err) = match &a.window_cmd_log {
                Some(p) => {
                    let f = std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?;
                    (Stdio::from(f.try_clone()?), Stdio::from(f))
                }
                None => (Stdio::null(), Stdio::null()),
            };
            let child = Command::new("sh")
                .args(["-c", c])
                .stdout(out)
                .stderr(err)
                .spawn()
                .with_context(|| format!("running the window command {c:?}"))?;
            Some(Kill(child))
        }
        None => None,
    };
    let min = Duration::from_secs(a.seconds);
    let mut cmd_status = None;
    loop {
        if let Some(c) = cmd.as_mut().filter(|_| cmd_status.is_none()) {
            cmd_status = c.0.try_wait()?;
        }
        let done = cmd.is_none() || cmd_status.is_some();
        if (done && started.elapsed() >= min) || started.elapsed() >= Duration::from_secs(600) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = snap.since()?;
    let t1_ns = now_ns();
    let fx = fixture_snap.map(|s| s.since()).transpose()?;
    let dmon_m = dmon_snap.map(|s| s.since());
    // The self sample that closes the window comes up to a second later.
    std::thread::sleep(Duration::from_millis(1500));
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    println!(
        "bench agent_overhead: {:.1} s window, {} ms sampling, {} samples streamed{}",
        m.seconds,
        a.interval_ms,
        seen.samples,
        match (&a.window_cmd, cmd_status) {
            (Some(c), Some(st)) => format!(", window command {c:?} exited {st}"),
            (Some(c), None) => format!(", window command {c:?} still running at 600 s"),
            _ => String::new(),
        }
    );
    println!(
        "before the window: {}",
        if quiet {
            format!("no GPU in a burst (waited {:.1} s)", waited.as_secs_f64())
        } else {
            format!(
                "a GPU still in a burst after {:.0} s; the window opened anyway",
                waited.as_secs_f64()
            )
        }
    );
    let o = bursts::overlap(&seen, t0_ns, t1_ns, t1_ns + 1_000_000_000);
    println!(
        "bursts in the window: {}",
        if o.none() {
            "none".to_string()
        } else {
            format!(
                "{} cadence change(s), {} GPU burst tick(s){}",
                o.changes,
                o.burst_ticks,
                if a.window_cmd.is_none() {
                    " (NOT a steady window)"
                } else {
                    ""
                }
            )
        }
    );
    println!(
        "servescope-agent      cpu {:6.3} % of one core   peak RSS {:6.1} MiB   (cpu from {}; clock ticks {:.3} %)",
        m.cpu_pct,
        m.rss as f64 / 1048576.0,
        m.cpu_source,
        m.cpu_pct_ticks
    );
    for (name, pct) in &m.threads {
        println!("  thread {name:<16} cpu {pct:6.3} % of one core");
    }
    match dmon_m {
        Some(Ok(r)) => {
            println!(
                "nvidia-smi dmon -d 1  cpu {:6.3} % of one core   peak RSS {:6.1} MiB",
                r.cpu_pct,
                r.rss as f64 / 1048576.0
            );
            println!(
                "ratio agent/dmon      cpu {:6.2}x                 RSS {:6.2}x",
                m.cpu_pct / r.cpu_pct.max(1e-9),
                m.rss as f64 / r.rss.max(1) as f64
            );
        }
        Some(_) => println!(
            "nvidia-smi dmon -d 1  could not be measured (it exited early: no GPU or driver?)"
        ),
        None => println!(
            "nvidia-smi dmon -d 1  not run: nvidia-smi not found (no reference on this machine)"
        ),
    }
    println!(
        "goal (≤ 0.5 % of a core, ≤ 30 MiB): cpu {:.2}x of goal, RSS {:.2}x of goal → {}",
        m.cpu_pct / 0.5,
        m.rss as f64 / (30.0 * 1048576.0),
        if m.cpu_pct <= 0.5 && m.rss <= 30 << 20 {
            "met"
        } else {
            "NOT met"
        }
    );
    report_gpu(&m, &seen, t0_ns, t1_ns);
    project(&m, fx.as_ref(), &seen, (t0_ns, t1_ns), o.burst_ticks);
    drop(agent);
    drop(fixture);
    drop(cmd);
    let _ = streamer.join();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The GPU collector's cost per GPU: its threads' CPU and the NVML call time.
fn report_gpu(m: &Measured, seen: &Seen, t0: u64, t1: u64) {
    for (t, msg) in seen.cadence.iter().filter(|(t, _)| *t >= t0 && *t <= t1) {
        println!("  cadence +{:6.1} s  {msg}", (t - t0) as f64 / 1e9);
    }
    for (_, msg) in &seen.call_choices {
        println!("  {msg}");
    }
    let gpus = selfcost::per_gpu(seen, t0, t1 + 1_000_000_000);
    for (gpu, probe) in selfcost::per_gpu(seen, 0, u64::MAX) {
        let mean = |n: &str| {
            probe
                .get(n)
                .filter(|x| x.0 > 0)
                .map_or("-".to_string(), |x| {
                    format!("{:.1}µs", x.1 as f64 / x.0 as f64 / 1e3)
                })
        };
        if probe.contains_key("memory_probe_v1") || probe.contains_key("memory_probe_v2") {
            let v1 = gpus
                .get(&gpu)
                .is_some_and(|c| c.contains_key("memory_reserved"));
            println!(
                "  gpu{gpu} memory call: {} every tick (probe at start: v1 {}, v2 {})",
                if v1 { "v1" } else { "v2" },
                mean("memory_probe_v1"),
                mean("memory_probe_v2")
            );
        }
    }
    if gpus.is_empty() {
        println!("gpu collector: no GPU (no gpu<N>.* calls in the self-telemetry)");
        return;
    }
    let threads = m.threads_pct(&["collect-gpu", "nvml-events"]);
    println!(
        "gpu collector threads cpu {:6.3} % of one core for {} GPU(s): {:.4} % per GPU (goal ≤ {GOAL_PER_GPU_PCT} %: {:.2}x)",
        threads,
        gpus.len(),
        threads / gpus.len() as f64,
        threads / gpus.len() as f64 / GOAL_PER_GPU_PCT
    );
    let each: Vec<String> = m
        .threads
        .iter()
        .filter(|(n, _)| n.starts_with("collect-gpu") || n.starts_with("nvml-events"))
        .map(|(n, pct)| format!("{n} {pct:.4}"))
        .collect();
    println!(
        "  gpu collector threads, % of one core: {}",
        each.join(", ")
    );
    for (gpu, calls) in &gpus {
        let top: Vec<String> = calls
            .iter()
            .map(|(n, (c, ns))| (n, c, ns))
            .filter(|x| *x.2 > 0)
            .map(|(n, c, ns)| format!("{n} {c}×{:.0}µs", *ns as f64 / *c.max(&1) as f64 / 1e3))
            .collect();
        println!(
            "  gpu{gpu} NVML calls {:.4} % of one core (wall): {}",
            selfcost::calls_pct(calls, m.seconds),
            top.join(", ")
        );
    }
}

/// A p5 (8 GPUs, 32 EFA ports) from this run: the agent less its GPU and RDMA
/// threads, plus the GPU threads' shared part (their CPU less every GPU's share),
/// plus 8 × the per-GPU share, plus the fixture agent's RDMA thread. A GPU's share
/// is the wall time of its fast ticks and slow passes (NVML calls included), so
/// the shared part is never overstated at the per-GPU part's expense; the shares
/// are capped at the threads' CPU ([`selfcost::split`]). An agent
/// that does not time the shares is projected as 8 × its GPU threads per GPU.
fn project(
    m: &Measured,
    fx: Option<&Measured>,
    seen: &Seen,
    (t0, t1): (u64, u64),
    burst_ticks: u64,
) {
    let gpus = selfcost::per_gpu(seen, t0, t1 + 1_000_000_000);
    let n = gpus.len();
    let gpu = m.threads_pct(&["collect-gpu", "nvml-events"]);
    let rest = m.cpu_pct - gpu - m.threads_pct(&["collect-rdma"]);
    let rdma = fx.map(|f| f.threads_pct(&["collect-rdma"]));
    if let Some(r) = rdma {
        println!("rdma collector on the p5 fixture (32 EFA ports): cpu {r:6.3} % of one core");
    }
    let shares: Vec<f64> = gpus
        .values()
        .filter_map(|c| selfcost::share_pct(c, m.seconds))
        .collect();
    let split = (n > 0 && shares.len() == n)
        .then(|| selfcost::split(gpu, &shares))
        .flatten();
    let verdict = |x: f64, goal: f64| if x <= goal { "met" } else { "NOT met" };
    let (shared, per_gpu) = match split {
        Some(s) => {
            let waited = match s.waited_wall {
                Some(wall) => format!(
                    "; the GPUs' ticks took {wall:.4} % wall against {gpu:.4} % thread cpu (calls waited in the driver), so the per-GPU share is the threads' cpu"
                ),
                None => String::new(),
            };
            println!(
                "gpu collector split: {:.4} % of one core per GPU (its ticks and slow passes; goal ≤ {GOAL_PER_GPU_PCT} %: {:.2}x → {}) + {:.4} % shared by all GPUs (thread wake-ups, sample hand-off){waited}",
                s.per_gpu,
                s.per_gpu / GOAL_PER_GPU_PCT,
                verdict(s.per_gpu, GOAL_PER_GPU_PCT),
                s.shared
            );
            (Some(s.shared), Some(s.per_gpu))
        }
        None => (None, (n > 0).then(|| gpu / n as f64)),
    };
    let collectors = shared.unwrap_or(0.0) + per_gpu.unwrap_or(0.0) * P5_GPUS + rdma.unwrap_or(0.0);
    let total = rest.max(0.0) + collectors;
    let missing: Vec<&str> = [
        per_gpu.is_none().then_some("GPU part: no GPU here"),
        rdma.is_none().then_some("RDMA part: no fixture"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(" ({})", missing.join("; "))
    };
    // In a window with bursts the per-GPU share is a cold start's: projected to a
    // p5, every GPU cold-starts at once (tensor-parallel ranks) for the window.
    let scope = if burst_ticks > 0 {
        "8 GPUs at 10 Hz, all in this window's cold start at once,"
    } else {
        "8 GPUs at 10 Hz"
    };
    println!(
        "p5 projection, {scope} + 32 EFA ports (GPU shared {:.3} + 8 × {:.4} per GPU + {:.3} RDMA): {collectors:.3} % of one core; goal ≤ {GOAL_PCT} %: {:.2}x of goal → {}{missing}",
        shared.unwrap_or(0.0),
        per_gpu.unwrap_or(0.0),
        rdma.unwrap_or(0.0),
        collectors / GOAL_PCT,
        verdict(collectors, GOAL_PCT),
    );
    println!(
        "p5 projection, whole agent (the above + rest {:.3}: gRPC stream, host, startup watcher, self): {total:.3} % of one core; {:.2}x of {GOAL_PCT} % → {}{missing}",
        rest.max(0.0),
        total / GOAL_PCT,
        verdict(total, GOAL_PCT),
    );
}
