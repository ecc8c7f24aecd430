//! `--nixl-python PY`: our NIXL-level probe against the NIXL wheel's own Python API
//! (bench/nixl_ref.py), both on host memory between two processes, in one run.
//!
//! Ours: a `NixlEndpoint` initiator in this process and its target in a child (this
//! binary re-executed as `--responder nixl`), each supervising its own driver, as two
//! agents do. Reference: bench/nixl_ref.py, which starts its own target process.
//! Both move one descriptor of each size, WRITE then READ, the same warm-up and
//! iterations, contents verified after each (size, op), through the same UCX with the
//! same `UCX_TLS` (default tcp: the path a READ between two processes on one GPU
//! takes, software emulation over tcp, so the figures show the CPU cost of each
//! side's loop). Rounds alternate who goes first; each figure is bytes over the
//! average transfer time (1e9 B/s).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use servescope_fabric::nixl::{NixlEndpoint, NixlOptions, PythonChoice};
use servescope_fabric::{Op, ProbeEndpoint, ProbePlan};

use crate::kid::Kid;
use crate::ours::{decode_peer, hex, serve_responder};
use crate::table::{si, size_label, GOAL};

/// What one comparison runs.
pub(crate) struct NixlBench {
    pub python: PathBuf,
    pub sizes: Vec<u64>,
    pub iters: u32,
    pub rounds: u32,
    pub tls: String,
}

const WARMUP: u32 = 2;

fn plan(sizes: &[u64], iters: u32) -> ProbePlan {
    ProbePlan {
        sizes: sizes.to_vec(),
        ops: vec![Op::RmaWrite, Op::RmaRead],
        iterations: iters,
        warmup: WARMUP,
        peer_timeout: Duration::from_secs(60),
        max_duration: Duration::from_secs(600),
        verify: true,
        ..ProbePlan::default()
    }
}

fn options(python: &Path, tls: &str) -> NixlOptions {
    NixlOptions {
        python: PythonChoice {
            python: Some(python.to_path_buf()),
            ..Default::default()
        },
        env: vec![("UCX_TLS".into(), tls.into())],
        ..Default::default()
    }
}

/// The plan line: `NIXL <iters> <size,size,...> <UCX_TLS> <python path>`.
fn encode(b: &NixlBench) -> String {
    let sizes: Vec<String> = b.sizes.iter().map(u64::to_string).collect();
    let py = b.python.display();
    format!("NIXL {} {} {} {py}", b.iters, sizes.join(","), b.tls)
}

fn decode(line: &str) -> Result<(ProbePlan, NixlOptions)> {
    let mut it = line.trim_end().splitn(5, ' ');
    let (Some("NIXL"), Some(iters), Some(sizes), Some(tls), Some(py)) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        bail!("malformed NIXL plan line {line:?}");
    };
    let sizes = sizes
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<u64>, _>>()
        .with_context(|| format!("sizes in {line:?}"))?;
    let iters = iters
        .parse()
        .with_context(|| format!("iters in {line:?}"))?;
    Ok((plan(&sizes, iters), options(Path::new(py), tls)))
}

/// The child side: the NIXL target.
pub(crate) fn responder() -> Result<()> {
    serve_responder(|line| {
        let (plan, opts) = decode(line)?;
        Ok((Box::new(NixlEndpoint::open(&opts, &plan)?), plan))
    })
}

/// (size, op) → GB/s of one run.
type Rates = BTreeMap<(u64, String), f64>;

/// One run of ours: the target in a child, the initiator here.
fn ours(b: &NixlBench) -> Result<Rates> {
    let exe = std::env::current_exe().context("locating this benchmark's binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["--responder", "nixl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut kid = Kid::spawn(cmd, "our NIXL target")?;
    let mut stdin = kid.0.stdin.take().context("target stdin")?;
    let stdout = kid.0.stdout.take().context("target stdout")?;
    writeln!(stdin, "{}", encode(b)).context("sending the plan")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if let Some(rest) = line.strip_prefix("PEER ") {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let plan = plan(&b.sizes, b.iters);
    let mut ep = NixlEndpoint::open(&options(&b.python, &b.tls), &plan)?;
    let line = rx
        .recv_timeout(Duration::from_secs(90))
        .context("our NIXL target gave no address within 90 s")?;
    let me = ep.local_info();
    writeln!(stdin, "{} {}", hex(&me.address), hex(&me.rma)).context("to the target")?;
    stdin.flush()?;
    ep.connect(&decode_peer(&line)?)?;
    let rows = ep.run_driver(&plan, &|| false)?;
    let st = kid.wait(Duration::from_secs(60))?;
    if !st.success() {
        bail!("our NIXL target exited with {st}");
    }
    let mut out = Rates::new();
    for r in rows {
        if !r.nixl.as_ref().is_some_and(|x| x.verified) {
            bail!("ours: {} of {} bytes not verified", r.op, r.size);
        }
        out.insert((r.size, r.op.to_string()), r.bandwidth_bps / 1e9);
    }
    Ok(out)
}

/// One run of the reference script.
fn reference(b: &NixlBench) -> Result<Rates> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("nixl_ref.py");
    let sizes: Vec<String> = b.sizes.iter().map(u64::to_string).collect();
    let mut cmd = Command::new(&b.python);
    cmd.arg(&script)
        .args(["--mem", "host", "--sizes", &sizes.join(",")])
        .args(["--iters", &b.iters.to_string()])
        .args(["--warmup", &WARMUP.to_string()])
        .env("UCX_TLS", &b.tls)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut kid = Kid::spawn(cmd, "bench/nixl_ref.py")?;
    let stdout = kid.0.stdout.take().context("reference stdout")?;
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(|l| l.ok())
        .collect();
    let st = kid.wait(Duration::from_secs(60))?;
    let mut out = Rates::new();
    for line in lines.iter().filter(|l| l.starts_with("{\"nixl_ref\"")) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let r = &v["nixl_ref"];
        let (Some(size), Some(op), Some(gbps)) =
            (r["size"].as_u64(), r["op"].as_str(), r["gbps"].as_f64())
        else {
            bail!("reference line without size/op/gbps: {line}");
        };
        if r["verified"].as_bool() != Some(true) {
            bail!("reference: {op} of {size} bytes not verified");
        }
        out.insert((size, op.to_string()), gbps);
    }
    if !st.success() || out.is_empty() {
        bail!("bench/nixl_ref.py exited with {st} ({} rows)", out.len());
    }
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs the comparison and prints its table; returns (goals met, comparisons made).
pub(crate) fn compare(b: &NixlBench) -> Result<(u32, u32)> {
    println!(
        "NIXL-level probe vs the NIXL wheel's own Python API (bench/nixl_ref.py): host memory, \
         two processes each, UCX_TLS={}, one descriptor per transfer, {} iterations after \
         {WARMUP} warm-up, contents verified; {} rounds alternating who goes first (each run \
         on stderr). GB/s = 1e9 B/s over the average transfer time. 'best' compares the best \
         run of each side; 'paired' is the median over rounds of ours / the reference run \
         beside it.",
        b.tls, b.iters, b.rounds
    );
    let (mut o_runs, mut r_runs) = (Vec::new(), Vec::new());
    for round in 1..=b.rounds {
        let first_ours = round % 2 == 1;
        for who in [first_ours, !first_ours] {
            let (label, run) = if who {
                ("ours", ours(b))
            } else {
                ("reference", reference(b))
            };
            match run {
                Ok(r) => {
                    let cells: Vec<String> = r
                        .iter()
                        .map(|((s, op), g)| format!("{} {op} {g:.3}", size_label(*s)))
                        .collect();
                    eprintln!("  #{round} {label}: {}", cells.join(" | "));
                    if who { &mut o_runs } else { &mut r_runs }.push(Some(r));
                }
                Err(e) => {
                    eprintln!("  #{round} {label}: {e:#}");
                    if who { &mut o_runs } else { &mut r_runs }.push(None);
                }
            }
        }
    }
    println!(
        "\n  {:>8} {:<5} {:>10} {:>10} {:>8} {:>8}  goal ≥ {GOAL}× (best)",
        "size", "op", "ours", "reference", "best", "paired"
    );
    let (mut met, mut made) = (0, 0);
    for &size in &b.sizes {
        for op in ["WRITE", "READ"] {
            let key = (size, op.to_string());
            let get = |runs: &[Option<Rates>]| -> Vec<Option<f64>> {
                runs.iter()
                    .map(|r| r.as_ref().and_then(|r| r.get(&key).copied()))
                    .collect()
            };
            let (o, r) = (get(&o_runs), get(&r_runs));
            let best = |v: &[Option<f64>]| v.iter().flatten().copied().reduce(f64::max);
            let paired: Vec<f64> = o
                .iter()
                .zip(&r)
                .filter_map(|(a, b)| Some((*a)? / (*b)?))
                .collect();
            let (Some(ob), Some(rb)) = (best(&o), best(&r)) else {
                println!(
                    "  {:>8} {op:<5} no verified run on one side",
                    size_label(size)
                );
                continue;
            };
            made += 1;
            let ratio = ob / rb;
            met += u32::from(ratio >= GOAL);
            let verdict = if ratio >= GOAL { "met" } else { "NOT met" };
            println!(
                "  {:>8} {op:<5} {:>10} {:>10} {ratio:>8.3} {:>8.3}  {verdict}",
                size_label(size),
                si(ob * 1e9),
                si(rb * 1e9),
                median(paired)
            );
        }
    }
    Ok((met, made))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_line_round_trips_a_python_path_with_spaces() {
        let b = NixlBench {
            python: "/opt/my env/bin/python3".into(),
            sizes: vec![16 << 20, 256 << 20],
            iters: 7,
            rounds: 1,
            tls: "tcp".into(),
        };
        let (p, o) = decode(&encode(&b)).expect("decodes");
        assert_eq!(p.sizes, b.sizes);
        assert_eq!((p.iterations, p.warmup), (7, WARMUP));
        assert_eq!(o.python.python.as_deref(), Some(b.python.as_path()));
        assert_eq!(o.env, vec![("UCX_TLS".to_string(), "tcp".to_string())]);
        assert!(decode("NIXL 7 x tcp /py").is_err());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
