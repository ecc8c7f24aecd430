//! Each rule raised by exactly its injected fault, through the store; a clean run
//! raises nothing. This file holds the recorded node the telemetry tests start
//! from and the assertions the tests share; the tests are split by kind of run.

mod kv;
mod load;
mod telemetry;

use servescope_proto::v1::{
    sample, CallCost, Event, GpuInfo, GpuReading, GpuSample, Inventory, RdmaDeviceInfo,
    RdmaDeviceReading, RdmaPortInfo, RdmaPortReading, RdmaSample, Sample, SelfSample,
};

use super::*;

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

/// The findings of `run`, which must be exactly `rule`'s.
fn only_in(st: &Store, run: i64, rule: &str) -> Vec<Finding> {
    let f = diagnose_run(st, run).unwrap();
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [rule],
        "{f:#?}"
    );
    f
}

/// The one finding of `n`'s recording, which must be `rule`'s.
fn only(n: Node, rule: &str) -> Finding {
    let mut st = Store::in_memory().unwrap();
    let run = record(&mut st, &n);
    only_in(&st, run, rule).into_iter().next().unwrap()
}

/// `n`'s recording raises nothing.
fn assert_quiet(n: &Node) {
    let mut st = Store::in_memory().unwrap();
    let run = record(&mut st, n);
    assert!(rules(&st, run).is_empty(), "{:?}", rules(&st, run));
}

/// The finding's first line of evidence holds every one of `parts`.
fn assert_first_evidence(f: &Finding, parts: &[&str]) {
    assert!(
        parts.iter().all(|p| f.evidence[0].contains(p)),
        "{:?}",
        f.evidence
    );
}
