//! bench/loadgen: the most streamed tokens/s and requests/s our load client sustains
//! against `servescope sim` with zero latency, beside a reference Python aiohttp
//! client (streaming as `vllm bench serve` does) against the same sim in the same
//! invocation; prints the ratio. Also the client's own added TTFT: client TTFT
//! (from send) minus the server's own queue + TTFT from its per-request `metrics`,
//! at concurrency 1 — goal p99 < 1 ms. Both clients and the sim share this
//! machine's cores, so the sim's CPU is printed too: when it is near 100 % of a
//! core, the sim, not the client, is the limit.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use servescope_coordinator::orchestration::load::http::HttpClient;
use servescope_coordinator::orchestration::load::request::{execute, Api, Clock, Target};
use servescope_coordinator::orchestration::load::schedule::{run, Arrival, Plan};
use servescope_coordinator::orchestration::load::workload::RandomWorkload;

#[derive(Parser)]
struct Args {
    /// The servescope binary (for `servescope sim`); default: next to this benchmark
    #[arg(long)]
    servescope_bin: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests per client run (8000 × 256 tokens: about a second for ours, ten for
    /// the reference; fewer makes the ratio noisy)
    #[arg(long, default_value_t = 8000)]
    requests: usize,
    #[arg(long, default_value_t = 32)]
    input_len: u32,
    #[arg(long, default_value_t = 256)]
    output_len: u32,
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (t(11) + t(12)) / hz
}

fn start_sim(bin: &PathBuf, extra: &[&str]) -> anyhow::Result<(Kill, String)> {
    let mut c = Command::new(bin)
        .args(["sim", "--listen", "127.0.0.1:0", "--max-num-seqs", "100000"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} sim", bin.display()))?;
    let out = c.stdout.take().context("sim stdout")?;
    let k = Kill(c);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    if !line.starts_with("http://") {
        bail!("sim did not print its URL: {line:?}");
    }
    Ok((k, line.trim().to_string()))
}

fn target(url: &str) -> Arc<Target> {
    Arc::new(Target {
        base_url: url.to_string(),
        api: Api::Completions,
        model: "servescope-sim".into(),
        request_id_prefix: "bench-".into(),
        sse_limits: Default::default(),
    })
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let bin = match a.servescope_bin.clone() {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("exe dir")?
            .join("servescope"),
    };
    let zero = [
        "--prefill-base-ms",
        "0",
        "--prefill-us-per-token",
        "0",
        "--decode-ms",
        "0",
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // Ours.
    let (sim, url) = start_sim(&bin, &zero)?;
    let sim_pid = sim.0.id();
    let c0 = cpu_seconds(sim_pid);
    let me0 = cpu_seconds(std::process::id());
    let t0 = Instant::now();
    let outs = rt.block_on(async {
        let client = HttpClient::new(a.concurrency);
        let tgt = target(&url);
        let w = Arc::new(RandomWorkload {
            input_tokens: a.input_len,
            output_tokens: a.output_len,
            ignore_eos: true,
            seed: 1,
        });
        let clock = Clock::new();
        let plan = Plan {
            arrival: Arrival::Closed {
                concurrency: a.concurrency,
            },
            num_requests: Some(a.requests),
            duration: None,
            seed: 1,
        };
        run(&plan, |slot| {
            let (client, tgt, w) = (client.clone(), Arc::clone(&tgt), Arc::clone(&w));
            async move { execute(&client, &tgt, &w.prompt(slot.index), slot, &clock).await }
        })
        .await
    })?;
    let ours_s = t0.elapsed().as_secs_f64();
    let ours_sim_cpu = (cpu_seconds(sim_pid) - c0) / ours_s * 100.0;
    let ours_cpu = (cpu_seconds(std::process::id()) - me0) / ours_s * 100.0;
    let failed = outs.iter().filter(|o| o.record.error.is_some()).count();
    let ours_chunks: u64 = outs.iter().map(|o| o.record.chunks.len() as u64).sum();
    drop(sim);

    // Reference.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ref_loadgen.py");
    let (sim, url) = start_sim(&bin, &zero)?;
    let sim_pid = sim.0.id();
    let c0 = cpu_seconds(sim_pid);
    let r = Command::new("python3")
        .arg(&script)
        .args([
            url.as_str(),
            &a.concurrency.to_string(),
            &a.requests.to_string(),
        ])
        .args([a.input_len.to_string(), a.output_len.to_string()])
        .output();
    let reference = match r {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value =
                serde_json::from_slice(&o.stdout).context("reference output")?;
            let s = v["seconds"].as_f64().unwrap_or(f64::NAN);
            Some((
                v["chunks"].as_u64().unwrap_or(0),
                v["requests"].as_u64().unwrap_or(0),
                s,
                (cpu_seconds(sim_pid) - c0) / s * 100.0,
            ))
        }
        Ok(o) => {
            println!(
                "reference client failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            None
        }
        Err(e) => {
            println!("reference client not run: {e}");
            None
        }
    };
    drop(sim);

    // Client-added TTFT at concurrency 1.
    let (sim, url) = start_sim(
        &bin,
        &[
            "--prefill-base-ms",
            "5",
            "--prefill-us-per-token",
            "0",
            "--decode-ms",
            "1",
        ],
    )?;
    let (mut added, mut own): (Vec<f64>, Vec<f64>) = rt.block_on(async {
        let client = HttpClient::new(1);
        let tgt = target(&url);
        let w = Arc::new(RandomWorkload {
            input_tokens: 16,
            output_tokens: 4,
            ignore_eos: true,
            seed: 2,
        });
        let clock = Clock::new();
        let plan = Plan {
            arrival: Arrival::Closed { concurrency: 1 },
            num_requests: Some(300),
            duration: None,
            seed: 2,
        };
        let outs = run(&plan, |slot| {
            let (client, tgt, w) = (client.clone(), Arc::clone(&tgt), Arc::clone(&w));
            async move { execute(&client, &tgt, &w.prompt(slot.index), slot, &clock).await }
        })
        .await
        .unwrap_or_default();
        outs.iter()
            .filter_map(|o| {
                let m = o.server_metrics.as_ref()?;
                let server = m["queue_time_ms"].as_f64()? + m["time_to_first_token_ms"].as_f64()?;
                let first = o.record.first_token_ns?;
                let client = first.checked_sub(o.record.send_ns)? as f64 / 1e6;
                // The sim's stamps at its HTTP edge (same host, same clock): request
                // handed to the handler, first token's bytes handed to the server.
                let w = &m["servescope_wire"];
                let into = w["request_in_unix_ns"].as_u64()?;
                let out = w["first_token_out_unix_ns"].as_u64()?;
                let wire = into.checked_sub(o.record.send_ns)? + first.checked_sub(out)?;
                Some((client - server, wire as f64 / 1e6))
            })
            .unzip()
    });
    drop(sim);
    added.sort_by(f64::total_cmp);
    own.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| {
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };

    println!(
        "bench loadgen: {} requests × {} output tokens, concurrency {}, zero-latency sim",
        a.requests, a.output_len, a.concurrency
    );
    println!(
        "servescope client   {:>10.0} tokens/s {:>8.1} req/s  ({} failed; client CPU {:.0} %, sim CPU {:.0} % of a core)",
        ours_chunks as f64 / ours_s,
        outs.len() as f64 / ours_s,
        failed,
        ours_cpu,
        ours_sim_cpu
    );
    if let Some((chunks, reqs, s, simcpu)) = reference {
        println!(
            "python aiohttp ref  {:>10.0} tokens/s {:>8.1} req/s  (sim CPU {:.0} % of a core)",
            chunks as f64 / s,
            reqs as f64 / s,
            simcpu
        );
        println!(
            "ratio servescope/reference: {:.2}x tokens/s (goal ≥ 10x)",
            (ours_chunks as f64 / ours_s) / (chunks as f64 / s)
        );
    }
    println!(
        "client-added TTFT, {} requests at concurrency 1: p50 {:.3} ms, p99 {:.3} ms (goal p99 < 1 ms)\n  \
         (client send → sim handler + sim's first token bytes out → client first token; \
         both legs include the loopback and the sim's HTTP layer)",
        own.len(),
        pct(&own, 0.5),
        pct(&own, 0.99)
    );
    println!(
        "  upper bound, client TTFT − sim's queue+TTFT (adds the sim's task hand-offs): p50 {:.3} ms, p99 {:.3} ms",
        pct(&added, 0.5),
        pct(&added, 0.99)
    );
    Ok(())
}
