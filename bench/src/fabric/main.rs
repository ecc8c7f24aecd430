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
//!
//! With `--nixl-python PY` it compares our NIXL-level probe with the NIXL wheel's own
//! Python API instead (see [`nixl`]), on host memory, 16 MiB and 256 MiB.

mod kid;
mod nixl;
mod ours;
mod reference;
mod table;

use anyhow::{bail, Result};
use clap::Parser;
use servescope_fabric::TransportTruth;

use ours::{make_plan, ours, responder};
use reference::{on_path, perftest, pingpong};
use table::{keep, row, size_label, table, Runs, GOAL};

const SIZES: [u64; 3] = [64 << 10, 1 << 20, 16 << 20];

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
    /// Compare our NIXL-level probe with bench/nixl_ref.py instead, with this Python
    /// (one whose NIXL wheel and numpy import: scripts/nixl_venv.sh); rounds: --repeats
    #[arg(long)]
    nixl_python: Option<std::path::PathBuf>,
    /// NIXL comparison: transfer sizes in bytes, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = NIXL_SIZES)]
    nixl_sizes: Vec<u64>,
    /// NIXL comparison: measured transfers per (size, op), after 2 warm-up
    #[arg(long, default_value_t = 20)]
    nixl_iters: u32,
    /// NIXL comparison: UCX_TLS of both sides of both (tcp: the emulated READ path)
    #[arg(long, default_value = "tcp")]
    nixl_tls: String,
    /// Internal: serve as our probe's responder ("ucx", "libfabric" or "nixl")
    #[arg(long, hide = true)]
    responder: Option<String>,
}

const NIXL_SIZES: [u64; 2] = [16 << 20, 256 << 20];

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(lib) = &args.responder {
        return match lib.as_str() {
            "nixl" => nixl::responder(),
            _ => responder(lib),
        };
    }
    if let Some(python) = &args.nixl_python {
        let b = nixl::NixlBench {
            python: python.clone(),
            sizes: args.nixl_sizes.clone(),
            iters: args.nixl_iters.max(1),
            rounds: args.repeats.max(1),
            tls: args.nixl_tls.clone(),
        };
        let (met, made) = nixl::compare(&b)?;
        println!("\ngoal ours/ref ≥ {GOAL}×: met in {met} of {made} comparisons");
        return Ok(());
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
