//! Test support for NVML startup inference: the recorded fixtures (an agent on an
//! H200 sampling every 100 ms beside a ground-truth workload that prints its own
//! phase markers) and models of other agent cadences derived from them.
//!
//! Cadence model: the agent keeps one sample per tick of its cadence (the first
//! recorded sample at or after each tick), so a 1 s agent sees every tenth
//! recorded sample and a mixed one sees whatever its policy keeps. The adaptive
//! policy modelled here is the agent's: 1 s until it notices the serving process,
//! 100 ms while that process holds GPU memory (at most [`FAST_FOR_NS`]), 1 s again
//! once it is gone. It notices the process through `/proc` at a 1 s tick, before
//! the process touches the GPU: the workload imports torch before its first
//! marker, which takes well over a second, so the process is taken to exist
//! [`IMPORT_NS`] before its `process` begin marker.
#![allow(dead_code)]

use std::collections::BTreeMap;

use servescope_coordinator::analysis::startup::nvml::GpuPoint;
use servescope_coordinator::analysis::startup::nvml_check::parse_markers;

/// Resolves from the coordinator and from the CLI tests that include this module.
pub const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../coordinator/tests/fixtures/nvml-startup"
);
pub const SLOW_NS: i64 = 1_000_000_000;
pub const FAST_NS: i64 = 100_000_000;
pub const FAST_FOR_NS: i64 = 120_000_000_000;
pub const IMPORT_NS: i64 = 1_000_000_000;

pub type Markers = BTreeMap<String, (Option<i64>, Option<i64>)>;

/// The fixture CSV (`t_ns,util_pct,pcie_rx_bytes,proc_mem_bytes[,proc_t_ns]`) as
/// points; the optional last column is when the agent read the process list.
pub fn points(csv: &str) -> Vec<GpuPoint> {
    let f = |s: &str| s.parse::<f64>().ok();
    csv.lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            Some(GpuPoint {
                t_ns: c.first()?.parse().ok()?,
                util_pct: f(c.get(1)?),
                pcie_rx: f(c.get(2)?),
                proc_mem: f(c.get(3)?),
                proc_t_ns: c.get(4).and_then(|s| s.parse().ok()),
                dev_mem: None,
            })
        })
        .collect()
}

/// A recording's points and markers.
pub fn recording(name: &str) -> (Vec<GpuPoint>, Markers) {
    let csv = std::fs::read_to_string(format!("{DIR}/{name}.csv")).expect("fixture");
    let marks = std::fs::read_to_string(format!("{DIR}/{name}.markers.jsonl")).expect("markers");
    (points(&csv), parse_markers(&marks))
}

/// The agent at one fixed cadence.
pub fn fixed(pts: &[GpuPoint], every_ns: i64) -> Vec<GpuPoint> {
    let mut out = Vec::new();
    let mut next = i64::MIN;
    for p in pts {
        if p.t_ns >= next {
            out.push(*p);
            next = p.t_ns - (p.t_ns - pts[0].t_ns) % every_ns + every_ns;
        }
    }
    out
}

/// The agent's adaptive cadence (see the module note); `appears_ns` is when the
/// serving process came to exist.
pub fn adaptive(pts: &[GpuPoint], appears_ns: i64) -> Vec<GpuPoint> {
    let mut out = Vec::new();
    let mut next = i64::MIN;
    let (mut fast_since, mut held, mut done) = (None::<i64>, false, false);
    for p in pts {
        if p.t_ns < next {
            continue;
        }
        out.push(*p);
        if !done && fast_since.is_none() && p.t_ns >= appears_ns {
            fast_since = Some(p.t_ns);
        }
        held |= p.proc_mem.is_some();
        if let Some(since) = fast_since.filter(|_| !done) {
            if (held && p.proc_mem.is_none()) || p.t_ns - since >= FAST_FOR_NS {
                done = true;
            }
        }
        let step = if fast_since.is_some() && !done {
            FAST_NS
        } else {
            SLOW_NS
        };
        // A little early, so a tick is not lost to the recording's own jitter.
        next = p.t_ns + step - step / 10;
    }
    out
}

/// The process's start as the agent can notice it (see the module note).
pub fn appears_ns(m: &Markers) -> i64 {
    m.get("process").and_then(|p| p.0).expect("process marker") - IMPORT_NS
}

/// The gaps between consecutive points, ns.
pub fn spacings(pts: &[GpuPoint]) -> Vec<i64> {
    pts.windows(2).map(|w| w[1].t_ns - w[0].t_ns).collect()
}

/// A two-GPU node (tensor-parallel ranks, one per GPU) built from two recordings:
/// GPU 0 is `h200-phase-workload`, GPU 1 `h200-phase-workload-diskbound`, moved in
/// time so both processes start together (GPU 1 loads slower and is ready last).
/// Per GPU: its points (on the common clock), its markers (moved alike) and pid.
pub fn two_gpu_node() -> Vec<(u32, u32, Vec<GpuPoint>, Markers)> {
    let (p0, m0) = recording("h200-phase-workload");
    let (p1, m1) = recording("h200-phase-workload-diskbound");
    let shift = appears_ns(&m0) - appears_ns(&m1);
    let p1 = p1
        .into_iter()
        .map(|p| GpuPoint {
            t_ns: p.t_ns + shift,
            ..p
        })
        .collect();
    let m1 = m1
        .into_iter()
        .map(|(k, (b, e))| (k, (b.map(|v| v + shift), e.map(|v| v + shift))))
        .collect();
    vec![(0, 4100, p0, m0), (1, 4101, p1, m1)]
}

/// A store holding the node's samples as one agent recorded them (each sample one
/// GPU's reading, the process listed while it held memory); returns the run.
pub fn store_with(
    store: &mut servescope_coordinator::Store,
    gpus: &[(u32, u32, Vec<GpuPoint>, Markers)],
) -> i64 {
    use servescope_proto::v1::{sample, GpuProcess, GpuReading, GpuSample, Inventory, Sample};
    let run = store
        .create_run(
            servescope_coordinator::store::RunKind::Record,
            "tp2",
            1,
            "{}",
        )
        .unwrap();
    let inv = Inventory {
        hostname: "node-a".into(),
        agent_instance: 1,
        ..Default::default()
    };
    let agent = store.agent_id("10.0.0.1:7733", &inv).unwrap();
    store.add_run_agent(run, agent).unwrap();
    let mut samples: Vec<Sample> = Vec::new();
    for (gpu, pid, pts, _) in gpus {
        for p in pts {
            samples.push(Sample {
                seq: 0,
                t_ns: p.t_ns as u64,
                collect_ns: 0,
                data: Some(sample::Data::Gpu(GpuSample {
                    gpus: vec![GpuReading {
                        index: *gpu,
                        util_gpu_pct: p.util_pct.map(|v| v as u32),
                        pcie_rx_bytes: p.pcie_rx.map(|v| v as u64),
                        processes: p
                            .proc_mem
                            .map(|m| GpuProcess {
                                pid: *pid,
                                name: "python3".into(),
                                used_bytes: m as u64,
                            })
                            .into_iter()
                            .collect(),
                        ..Default::default()
                    }],
                })),
            });
        }
    }
    samples.sort_by_key(|s| s.t_ns);
    for (i, s) in samples.iter_mut().enumerate() {
        s.seq = i as u64 + 1;
    }
    store.save_samples(run, agent, &samples).unwrap();
    run
}
