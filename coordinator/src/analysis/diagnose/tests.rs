//! Each rule raised by exactly its injected fault, through the store; a clean run
//! raises nothing.

use std::time::Duration;

use servescope_loadgen::metrics::{
    aggregate, AggregateOptions, ChunkArrival, ErrorClass, RequestRecord,
};
use servescope_loadgen::request::Outcome;
use servescope_loadgen::schedule::Arrival;
use servescope_proto::v1::{
    sample, CallCost, Event, GpuInfo, GpuReading, GpuSample, Inventory, RdmaDeviceInfo,
    RdmaDeviceReading, RdmaPortInfo, RdmaPortReading, RdmaSample, Sample, SelfSample,
};

use super::*;
use crate::analysis::pd::kv::Carrier;
use crate::store::{LoadPoint, PointConfig, ProbeVerdict};

const T0: u64 = 1_800_000_000_000_000_000;
const TICK: u64 = 100_000_000;
const COUNTERS: &[&str] = &[
    "hw_counters/tx_bytes",
    "hw_counters/rx_bytes",
    "hw_counters/retrans_pkts",
    "hw_counters/retrans_timeout_events",
];

fn inventory() -> Inventory {
    Inventory {
        hostname: "node-a".into(),
        agent_instance: 1,
        now_ns: T0,
        gpus: (0..2)
            .map(|i| GpuInfo {
                index: i,
                name: "NVIDIA H100 80GB HBM3".into(),
                pci_bus_id: format!("0000:{:02x}:00.0", 0x17 + i),
                memory_total_bytes: 80 << 30,
                nvlink_links: 18,
                ..Default::default()
            })
            .collect(),
        rdma_devices: vec![RdmaDeviceInfo {
            name: "rdmap0".into(),
            ports: vec![RdmaPortInfo {
                port: 1,
                state: "4: ACTIVE".into(),
                netdev: "enp0".into(),
                counter_names: COUNTERS.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn gpu(i: u32) -> GpuReading {
    GpuReading {
        index: i,
        memory_used_bytes: Some(72 << 30),
        memory_free_bytes: Some(8 << 30),
        util_gpu_pct: Some(90),
        sm_clock_mhz: Some(1980),
        throttle_reasons: Some(0),
        pcie_link_gen: Some(5),
        pcie_link_gen_max: Some(5),
        pcie_link_width: Some(16),
        pcie_link_width_max: Some(16),
        pcie_replay_count: Some(7),
        ..Default::default()
    }
}

fn port(k: u64, state: &str, retrans: u64) -> RdmaSample {
    RdmaSample {
        devices: vec![RdmaDeviceReading {
            device: "rdmap0".into(),
            ports: vec![RdmaPortReading {
                port: 1,
                values: vec![1000 * k, 1000 * k, retrans, 2],
                state: state.into(),
                netdev_operstate: "up".into(),
                netdev_carrier: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// What a clean node says at tick `k`; `fault` changes it.
struct Node {
    inv: Inventory,
    gpu: fn(u64, u32) -> GpuReading,
    rdma: fn(u64) -> RdmaSample,
    events: Vec<(u64, Event)>,
    self_cpu_per_tick: f64,
    /// The agent runs inside another program (its CPU is that program's).
    embedded: bool,
}

fn clean() -> Node {
    Node {
        inv: inventory(),
        gpu: |_, i| gpu(i),
        rdma: |k| port(k, "4: ACTIVE", 10),
        events: Vec::new(),
        self_cpu_per_tick: 0.0004,
        embedded: false,
    }
}

const TICKS: u64 = 100;

/// A `record` run of 10 s holding `n`'s samples.
fn record(st: &mut Store, n: &Node) -> i64 {
    let run = st.create_run(RunKind::Record, "rec", T0, "{}").unwrap();
    let a = st.agent_id("127.0.0.1:1", &n.inv).unwrap();
    st.add_run_agent(run, a).unwrap();
    st.save_inventory(run, a, &n.inv).unwrap();
    let mut seq = 0;
    let mut ss = Vec::new();
    let mut push = |t: u64, d: sample::Data| {
        seq += 1;
        ss.push(Sample {
            seq,
            t_ns: t,
            collect_ns: 0,
            data: Some(d),
        });
    };
    for k in 0..TICKS {
        let t = T0 + k * TICK;
        push(
            t,
            sample::Data::Gpu(GpuSample {
                gpus: (0..2).map(|i| (n.gpu)(k, i)).collect(),
            }),
        );
        push(t, sample::Data::Rdma((n.rdma)(k)));
        if k % 10 == 0 {
            push(
                t,
                sample::Data::SelfStats(SelfSample {
                    cpu_seconds_total: 1.0 + n.self_cpu_per_tick * k as f64,
                    rss_bytes: 25 << 20,
                    shares_process: n.embedded,
                    calls: vec![CallCost {
                        name: "gpu".into(),
                        count: 10,
                        mean_ns: 200_000,
                        max_ns: 400_000,
                    }],
                    ..Default::default()
                }),
            );
        }
    }
    for (k, e) in &n.events {
        push(T0 + k * TICK, sample::Data::Event(e.clone()));
    }
    st.save_samples(run, a, &ss).unwrap();
    st.finish_run(run, T0 + TICKS * TICK, "done").unwrap();
    run
}

fn rules(st: &Store, run: i64) -> Vec<&'static str> {
    let mut v: Vec<&str> = diagnose_run(st, run)
        .unwrap()
        .iter()
        .map(|f| f.rule)
        .collect();
    v.sort_unstable();
    v
}

fn only(n: Node, rule: &str) -> Finding {
    let mut st = Store::in_memory().unwrap();
    let run = record(&mut st, &n);
    let f = diagnose_run(&st, run).unwrap();
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [rule],
        "{f:#?}"
    );
    f.into_iter().next().unwrap()
}

#[test]
fn a_clean_recording_raises_nothing() {
    let mut st = Store::in_memory().unwrap();
    let run = record(&mut st, &clean());
    assert!(rules(&st, run).is_empty(), "{:?}", rules(&st, run));
}

#[test]
fn hardware_thermal_throttling_names_its_reason() {
    let mut n = clean();
    n.gpu = |k, i| GpuReading {
        throttle_reasons: Some(if i == 1 && k >= 50 { 0x40 } else { 0 }),
        sm_clock_mhz: Some(if i == 1 && k >= 50 { 1200 } else { 1980 }),
        ..gpu(i)
    };
    let f = only(n, "gpu_throttled");
    assert_eq!(f.severity, Severity::Critical);
    let e = f.evidence.join("\n");
    assert!(
        e.contains("GPU 1")
            && e.contains("HW thermal slowdown")
            && e.contains("+5.0 s")
            && e.contains("1200 MHz"),
        "{e}"
    );
}

#[test]
fn xids_are_classified_with_their_action() {
    let mut n = clean();
    let xid = |x: u64| Event {
        kind: "xid".into(),
        source: "kmsg".into(),
        gpu_index: Some(0),
        xid: Some(x),
        message: "NVRM: Xid".into(),
        ..Default::default()
    };
    n.events = vec![(30, xid(13)), (40, xid(79))];
    let f = only(n, "gpu_xid");
    assert_eq!(f.severity, Severity::Critical);
    let e = f.evidence.join("\n");
    assert!(
        e.contains("XID 13") && e.contains("application error") && e.contains("+3.0 s"),
        "{e}"
    );
    assert!(
        e.contains("XID 79") && e.contains("fallen off the bus") && e.contains("drain the node"),
        "{e}"
    );
    // An application XID alone is a warning.
    let mut n = clean();
    n.events = vec![(30, xid(31))];
    assert_eq!(only(n, "gpu_xid").severity, Severity::Warning);
}

#[test]
fn a_pcie_link_below_its_maximum_is_named() {
    let mut n = clean();
    n.gpu = |_, i| GpuReading {
        pcie_link_width: Some(if i == 0 { 8 } else { 16 }),
        ..gpu(i)
    };
    let f = only(n, "pcie_link_degraded");
    assert!(
        f.evidence[0].contains("Gen5 x8 of Gen5 x16"),
        "{:?}",
        f.evidence
    );
    // An idle GPU's link trains down to save power: not a finding.
    let mut n = clean();
    n.gpu = |_, i| GpuReading {
        pcie_link_gen: Some(1),
        util_gpu_pct: Some(0),
        ..gpu(i)
    };
    let mut st = Store::in_memory().unwrap();
    let run = record(&mut st, &n);
    assert!(rules(&st, run).is_empty());
}

#[test]
fn rising_pcie_replays_are_named() {
    let mut n = clean();
    n.gpu = |k, i| GpuReading {
        pcie_replay_count: Some(7 + if i == 1 { k } else { 0 }),
        ..gpu(i)
    };
    let f = only(n, "pcie_replays_rising");
    assert!(
        f.evidence[0].contains("GPU 1") && f.evidence[0].contains("99 PCIe replays"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn a_gpu_with_fewer_nvlinks_than_its_peers_is_named() {
    let mut n = clean();
    n.inv.gpus[1].nvlink_links = 12;
    let f = only(n, "nvlink_inactive");
    assert!(
        f.evidence[0].contains("GPU 1")
            && f.evidence[0].contains("12 active NVLink links")
            && f.evidence[0].contains("have 18")
    );
}

#[test]
fn gpu_memory_near_full_while_serving_is_named() {
    let mut n = clean();
    n.gpu = |_, i| GpuReading {
        memory_used_bytes: Some(if i == 0 { 79 << 30 } else { 72 << 30 }),
        ..gpu(i)
    };
    let f = only(n, "gpu_memory_near_full");
    assert!(
        f.evidence[0].contains("GPU 0") && f.evidence[0].contains("79.00 of 80.00 GiB"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn a_port_down_then_up_is_a_link_down_and_twice_is_flapping() {
    let mut n = clean();
    n.rdma = |k| {
        port(
            k,
            if (40..60).contains(&k) {
                "1: DOWN"
            } else {
                "4: ACTIVE"
            },
            10,
        )
    };
    let f = only(n, "nic_link_down");
    let e = &f.evidence[0];
    assert!(
        e.contains("rdmap0 port 1")
            && e.contains("down at +4.0 s")
            && e.contains("up again 2.0 s later"),
        "{e}"
    );
    let mut n = clean();
    n.rdma = |k| {
        port(
            k,
            if (20..30).contains(&k) || (60..70).contains(&k) {
                "1: DOWN"
            } else {
                "4: ACTIVE"
            },
            10,
        )
    };
    let f = only(n, "nic_link_flapping");
    assert!(
        f.evidence[0].contains("+2.0 s") && f.evidence[0].contains("+6.0 s"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn rising_retransmits_are_named_and_a_few_are_not() {
    let mut n = clean();
    n.rdma = |k| {
        port(
            k,
            "4: ACTIVE",
            if k >= 50 { 10 + 50 * (k - 49) } else { 10 },
        )
    };
    let f = only(n, "rdma_retransmits_rising");
    assert!(
        f.evidence[0].contains("retrans_pkts +2500")
            && f.evidence[0].contains("rising from +5.0 s"),
        "{:?}",
        f.evidence
    );
    let mut n = clean();
    n.rdma = |k| port(k, "4: ACTIVE", 10 + k / 10);
    let mut st = Store::in_memory().unwrap();
    let run = record(&mut st, &n);
    assert!(rules(&st, run).is_empty());
}

#[test]
fn a_costly_agent_is_named() {
    let mut n = clean();
    n.self_cpu_per_tick = 0.005; // 5 % of a core
    let f = only(n, "agent_overhead_high");
    assert!(
        f.evidence[0].contains("5.00 % of one core"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn an_agent_inside_another_program_is_not_blamed_for_its_cpu() {
    let mut n = clean();
    n.self_cpu_per_tick = 0.005;
    n.embedded = true;
    let mut st = Store::in_memory().unwrap();
    let run = record(&mut st, &n);
    assert!(rules(&st, run).is_empty());
}

// ---- load runs ----

fn outcome(i: usize, ttft_ms: u64, error: Option<(u16, &str)>, lag_ms: u64) -> Outcome {
    let start = 1_000_000_000 + i as u64 * 1_000_000;
    let first = start + ttft_ms * 1_000_000;
    Outcome {
        index: i,
        request_id: format!("r{i}"),
        record: RequestRecord {
            scheduled_ns: start,
            send_ns: start,
            first_byte_ns: error.is_none().then_some(first),
            first_token_ns: error.is_none().then_some(first),
            chunks: if error.is_none() {
                (0..4)
                    .map(|k| ChunkArrival {
                        at_ns: first + k * 5_000_000,
                        tokens: 1,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            last_byte_ns: Some(first + 20_000_000),
            finished_ns: first + 20_000_000,
            input_tokens: 16,
            output_tokens: if error.is_none() { 4 } else { 0 },
            error: error.map(|(s, _)| {
                if s == 0 {
                    ErrorClass::WrongOutput
                } else {
                    ErrorClass::HttpStatus(s)
                }
            }),
        },
        status: Some(error.map_or(200, |(s, _)| if s == 0 { 200 } else { s })),
        usage: None,
        server_metrics: None,
        dispatch_lag: Duration::from_millis(lag_ms),
        text: None,
        error_detail: error.map(|(_, b)| b.to_string()),
    }
}

struct Pt {
    concurrency: usize,
    outcomes: Vec<Outcome>,
    probe: Option<ProbeVerdict>,
    /// (median TTFT ms, req/s, peak in flight) overriding the computed aggregate.
    shape: Option<(f64, f64, u64)>,
}

fn pt(concurrency: usize, outcomes: Vec<Outcome>) -> Pt {
    Pt {
        concurrency,
        outcomes,
        probe: None,
        shape: None,
    }
}

fn load_run(st: &mut Store, kind: RunKind, pts: &[Pt]) -> i64 {
    let run = st.create_run(kind, "load", T0, "{}").unwrap();
    for (i, p) in pts.iter().enumerate() {
        let recs: Vec<RequestRecord> = p.outcomes.iter().map(|o| o.record.clone()).collect();
        let mut agg = aggregate(&recs, &AggregateOptions::default()).unwrap();
        if let Some((ttft, rps, peak)) = p.shape {
            agg.ttft_ms.median = ttft;
            agg.request_throughput = rps;
            agg.peak_concurrency = peak;
        }
        let cfg = PointConfig {
            arrival: Arrival::Closed {
                concurrency: p.concurrency,
            },
            trial: 0,
            max_dispatch_lag_ms: Some(0.0),
            probe: p.probe.clone(),
            exp: None,
        };
        let label = format!("concurrency {}", p.concurrency);
        st.save_point(
            run,
            &LoadPoint {
                point: i as i64,
                trial: 0,
                label: &label,
                config: &cfg,
                aggregate: &agg,
                outcomes: &p.outcomes,
                warmup: &[],
                span_ns: (T0 + i as u64 * 10 * TICK, T0 + (i as u64 + 1) * 10 * TICK),
            },
        )
        .unwrap();
    }
    st.finish_run(run, T0 + 100 * TICK, "done").unwrap();
    run
}

fn fine(n: usize) -> Vec<Outcome> {
    (0..n).map(|i| outcome(i, 20, None, 0)).collect()
}

#[test]
fn a_clean_load_run_raises_nothing() {
    let mut st = Store::in_memory().unwrap();
    let run = load_run(&mut st, RunKind::Load, &[pt(1, fine(4)), pt(2, fine(4))]);
    assert!(rules(&st, run).is_empty(), "{:?}", rules(&st, run));
}

#[test]
fn a_run_where_every_request_failed_is_named_with_its_first_error() {
    let mut st = Store::in_memory().unwrap();
    let body =
        "This model's maximum context length is 1024 tokens. However, you requested 4000 tokens";
    let bad = (0..4)
        .map(|i| outcome(i, 0, Some((400, body)), 0))
        .collect();
    let run = load_run(&mut st, RunKind::Load, &[pt(2, bad)]);
    let f = diagnose_run(&st, run).unwrap();
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        ["all_requests_failed"],
        "{f:#?}"
    );
    let e = f[0].evidence.join("\n");
    assert!(
        e.contains("4 of 4 requests failed")
            && e.contains("HTTP 400 ×4")
            && e.contains("http_400 ×4"),
        "{e}"
    );
    assert!(
        e.contains("first error (request r0): HTTP 400: This model's maximum context length"),
        "{e}"
    );
    assert_eq!(f[0].title, "Every request of the run failed");
}

#[test]
fn wrong_output_on_a_plain_run_does_not_blame_the_kv_transfer() {
    let mut st = Store::in_memory().unwrap();
    let mut p = pt(2, fine(4));
    p.probe = Some(ProbeVerdict {
        ok: false,
        detail: Some("gibberish".into()),
    });
    let run = load_run(&mut st, RunKind::Load, &[p]);
    assert_eq!(rules(&st, run), ["wrong_output"]);
    // The attribution of a plain run does not raise the P/D rule either.
    let a = attribute(&st, run, &AttributeOptions::default()).unwrap();
    assert!(!a.disaggregated);
    assert!(
        a.findings
            .iter()
            .all(|f| f.rule != "gibberish_after_transfer"),
        "{:#?}",
        a.findings
    );
    // The same output on a pd run is the P/D rule's.
    let mut p = pt(2, fine(4));
    p.probe = Some(ProbeVerdict {
        ok: false,
        detail: Some("gibberish".into()),
    });
    let run = load_run(&mut st, RunKind::Pd, &[p]);
    assert_eq!(rules(&st, run), ["gibberish_after_transfer"]);
}

#[test]
fn a_sweep_past_saturation_is_named_and_a_scaling_one_is_not() {
    let shaped = |shapes: [(f64, f64, u64); 4]| -> Vec<Pt> {
        [1, 2, 4, 8]
            .iter()
            .zip(shapes)
            .map(|(c, s)| Pt {
                shape: Some(s),
                ..pt(*c, fine(4))
            })
            .collect()
    };
    let mut st = Store::in_memory().unwrap();
    let run = load_run(
        &mut st,
        RunKind::Load,
        &shaped([
            (10.0, 10.0, 1),
            (11.0, 19.0, 2),
            (30.0, 20.0, 4),
            (70.0, 20.5, 8),
        ]),
    );
    let f = diagnose_run(&st, run).unwrap();
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        ["load_past_saturation"],
        "{f:#?}"
    );
    assert!(
        f[0].title.contains("2 point(s)") && f[0].fix.contains("Beyond concurrency 2"),
        "{:?}",
        f[0]
    );
    let run = load_run(
        &mut st,
        RunKind::Load,
        &shaped([
            (10.0, 10.0, 1),
            (11.0, 19.0, 2),
            (13.0, 36.0, 4),
            (20.0, 60.0, 8),
        ]),
    );
    assert!(rules(&st, run).is_empty());
}

#[test]
fn a_lagging_client_is_named_on_a_plain_run() {
    let mut st = Store::in_memory().unwrap();
    let run = load_run(
        &mut st,
        RunKind::Load,
        &[pt(2, (0..4).map(|i| outcome(i, 20, None, 50)).collect())],
    );
    assert_eq!(rules(&st, run), ["load_client_saturated"]);
}

// ---- KV rules, on a pd run's attribution ----

fn pd_facts(st: &mut Store, outcomes: Vec<Outcome>) -> RunFacts {
    let run = load_run(st, RunKind::Pd, &[pt(2, outcomes)]);
    RunFacts::load(st, run, &AttributeOptions::default()).unwrap()
}

#[test]
fn kv_bytes_over_tcp_are_named() {
    let mut st = Store::in_memory().unwrap();
    let mut f = pd_facts(&mut st, fine(4));
    assert!(diagnose_facts(&f).is_empty());
    if let Some(a) = f.attribution.as_mut() {
        a.kv.bytes = 4e9;
        a.kv.carrier = Some(Carrier::Tcp);
    }
    let rules: Vec<&str> = diagnose_facts(&f).iter().map(|x| x.rule).collect();
    assert_eq!(rules, ["kv_over_tcp"]);
}

#[test]
fn requests_served_from_expired_leases_with_http_200_are_named() {
    let mut st = Store::in_memory().unwrap();
    let mut f = pd_facts(&mut st, fine(4));
    if let Some(a) = f.attribution.as_mut() {
        a.kv.expired_requests = vec!["r1".into(), "r3".into(), "not-ours".into()];
    }
    let found = diagnose_facts(&f);
    assert_eq!(
        found.iter().map(|x| x.rule).collect::<Vec<_>>(),
        ["kv_expired_leases"]
    );
    assert!(
        found[0].evidence[0].contains("2 request(s)") && found[0].evidence[0].contains("r1, r3"),
        "{:?}",
        found[0]
    );
}
