//! bench/agent_overhead: runs `servescope-agent` at 100 ms sampling for 60 s with a
//! client streaming everything it produces, and prints its CPU as % of one core and
//! its peak RSS — beside the same figures for `nvidia-smi dmon -d 1` measured over
//! the same window when nvidia-smi exists (the reference). Goal: ≤ 0.5 % of a core
//! and ≤ 30 MiB.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use servescope_coordinator::connect::connect;
use servescope_coordinator::AgentEndpoint;
use servescope_proto::v1::StreamTelemetryRequest;

#[derive(Parser)]
struct Args {
    /// The agent binary (default: servescope-agent next to this benchmark)
    #[arg(long)]
    agent_bin: Option<PathBuf>,
    /// Measurement window in seconds (after a 3 s warm-up)
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Extra arguments for the agent (e.g. --sysfs-root DIR)
    #[arg(last = true)]
    agent_args: Vec<String>,
}

/// utime + stime of a process, in seconds, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the ")" that closes comm: state is field 3; utime 14, stime 15.
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11).context("no utime")?.parse()?;
    let st: f64 = f.get(12).context("no stime")?.parse()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok((ut + st) / if hz > 0 { hz as f64 } else { 100.0 })
}

/// Peak resident set (VmHWM) in bytes.
fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kb * 1024)
}

struct Measured {
    cpu_pct: f64,
    rss: u64,
    /// Per thread name: % of one core over the window (threads of one name summed).
    threads: Vec<(String, f64)>,
}

/// utime + stime in seconds per thread name (`/proc/<pid>/task/*/stat`).
fn thread_cpu(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    for e in dir.flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
            continue;
        };
        let name = s[open + 1..close].to_string();
        let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        *out.entry(name).or_insert(0.0) += (t(11) + t(12)) / hz;
    }
    out
}

fn measure_window(pid: u32, window: Duration) -> anyhow::Result<Measured> {
    let c0 = cpu_seconds(pid)?;
    let th0 = thread_cpu(pid);
    let t0 = Instant::now();
    std::thread::sleep(window);
    let c1 = cpu_seconds(pid)?;
    let th1 = thread_cpu(pid);
    let dt = t0.elapsed().as_secs_f64();
    let threads = th1
        .iter()
        .map(|(n, c)| {
            (
                n.clone(),
                (c - th0.get(n).copied().unwrap_or(0.0)) / dt * 100.0,
            )
        })
        .filter(|(_, pct)| *pct > 0.0)
        .collect();
    Ok(Measured {
        cpu_pct: (c1 - c0) / dt * 100.0,
        rss: peak_rss(pid)?,
        threads,
    })
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let mut child = Command::new(&bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--token-file",
        ])
        .arg(&token_file)
        .args(["--sample-interval-ms", &a.interval_ms.to_string()])
        .args(&a.agent_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("agent stdout")?;
    let agent = Kill(child);
    let pid = agent.0.id();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .with_context(|| format!("agent did not report its address: {line:?}"))?
        .to_string();

    // A client that streams everything, as `servescope record` would.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ep = AgentEndpoint::new(addr.clone(), Some("bench-token".into()));
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r2 = std::sync::Arc::clone(&received);
    let streamer = std::thread::spawn(move || {
        rt.block_on(async move {
            let mut c = connect(&ep).await?;
            let mut s = c
                .stream_telemetry(StreamTelemetryRequest {
                    live_only: true,
                    // As `servescope record` streams (its session's default).
                    max_delay_ms: u32::try_from(
                        servescope_coordinator::session::DEFAULT_MAX_DELAY.as_millis(),
                    )
                    .unwrap_or(500),
                    ..Default::default()
                })
                .await?
                .into_inner();
            while let Some(_m) = s.message().await? {
                r2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(())
        })
    });

    // The reference, over the same window, when a GPU is present.
    let dmon = Command::new("nvidia-smi")
        .args(["dmon", "-d", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(Kill);

    std::thread::sleep(Duration::from_secs(3));
    let window = Duration::from_secs(a.seconds);
    let dmon_pid = dmon.as_ref().map(|k| k.0.id());
    let dmon_handle = dmon_pid.map(|p| std::thread::spawn(move || measure_window(p, window)));
    let m = measure_window(pid, window)?;
    let samples = received.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "bench agent_overhead: {} s window, {} ms sampling, {} samples streamed",
        a.seconds, a.interval_ms, samples
    );
    println!(
        "servescope-agent      cpu {:6.3} % of one core   peak RSS {:6.1} MiB",
        m.cpu_pct,
        m.rss as f64 / 1048576.0
    );
    for (name, pct) in &m.threads {
        println!("  thread {name:<16} cpu {pct:6.3} % of one core");
    }
    match dmon_handle.map(|h| h.join()) {
        Some(Ok(Ok(r))) => {
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
    drop(agent);
    let _ = streamer.join();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
