//! `/metrics`, the CSV export and the JSON export carry every catalogue family
//! with the same name and the same value (so the same unit), on one canned node
//! whose sample fills every field.

use std::collections::{BTreeMap, BTreeSet};

use servescope_agent::exposition::render;
use servescope_proto::catalog::rdma::{CounterFamily, Scope};
use servescope_proto::catalog::{self, gpu};
use servescope_proto::v1::{
    sample, Availability, CallCost, GpuInfo, GpuProcess, GpuReading, GpuSample, HostInfo,
    HostSample, Inventory, NetInterfaceReading, RdmaDeviceInfo, RdmaDeviceReading, RdmaPortInfo,
    RdmaPortReading, RdmaSample, Sample, SelfSample,
};

use super::{export, Format};
use crate::store::{RunKind, Store};

const T0: u64 = 1_763_900_000_123_456_789;
const PORT_COUNTERS: &[&str] = &["hw_counters/tx_bytes", "counters/port_xmit_data"];
const DEVICE_COUNTERS: &[&str] = &["submitted_cmds"];

/// One GPU, one process, two cores, one interface, one RDMA device with one port:
/// every field set, nothing stale, nothing failed. The GPU reading is written out
/// field by field (no `..Default::default()`), so a new field must be given a value
/// here.
fn canned() -> (Inventory, Vec<Sample>) {
    let inv = Inventory {
        hostname: "node-c".into(),
        agent_version: "0.1.0".into(),
        agent_instance: 7,
        now_ns: T0,
        gpu: Some(Availability {
            available: true,
            detail: String::new(),
        }),
        driver_version: "580.82.07".into(),
        cuda_driver_version: "13.0".into(),
        nvml_version: "13.580.82.07".into(),
        gpus: vec![GpuInfo {
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: "GPU-c".into(),
            pci_bus_id: "0000:53:00.0".into(),
            numa_node: Some(0),
            memory_total_bytes: 80 << 30,
            nvlink_links: 18,
            architecture: "Hopper".into(),
        }],
        rdma_devices: vec![RdmaDeviceInfo {
            name: "rdmap16s27".into(),
            driver: "efa".into(),
            pci_address: "0000:10:00.0".into(),
            numa_node: Some(0),
            ports: vec![RdmaPortInfo {
                port: 1,
                state: "4: ACTIVE".into(),
                phys_state: "5: LinkUp".into(),
                rate: "100 Gb/sec (4X EDR)".into(),
                link_layer: "Unspecified".into(),
                netdev: "enp16s0".into(),
                counter_names: PORT_COUNTERS.iter().map(|c| c.to_string()).collect(),
            }],
            device_counter_names: DEVICE_COUNTERS.iter().map(|c| c.to_string()).collect(),
            pci_path: vec![],
        }],
        host: Some(HostInfo {
            os: "Ubuntu 22.04.5 LTS".into(),
            kernel: "6.8.0".into(),
            cpu_count: 2,
            memory_total_bytes: 64 << 30,
            net_interfaces: vec!["eth0".into()],
        }),
        ..Default::default()
    };
    let gpu = GpuReading {
        index: 0,
        memory_used_bytes: Some(70 << 30),
        memory_free_bytes: Some(9 << 30),
        memory_reserved_bytes: Some(512 << 20),
        util_gpu_pct: Some(37),
        util_memory_pct: Some(12),
        sm_clock_mhz: Some(1980),
        mem_clock_mhz: Some(2619),
        power_mw: Some(700_123),
        energy_mj: Some(9_876_543_210),
        temperature_c: Some(61),
        throttle_reasons: Some(4),
        pcie_tx_bytes: Some(123_456_789),
        pcie_rx_bytes: Some(987_654_321),
        nvlink_tx_bytes: Some(4_400_000_000),
        nvlink_rx_bytes: Some(4_300_000_000),
        ecc_corrected_total: Some(3),
        ecc_uncorrected_total: Some(1),
        remapped_rows_correctable: Some(2),
        remapped_rows_uncorrectable: Some(1),
        remapped_rows_pending: Some(true),
        remapped_rows_failure: Some(true),
        pcie_link_gen: Some(4),
        pcie_link_gen_max: Some(5),
        pcie_link_width: Some(16),
        pcie_link_width_max: Some(16),
        pcie_replay_count: Some(7),
        processes: vec![GpuProcess {
            pid: 4242,
            name: "python3".into(),
            used_bytes: 69 << 30,
        }],
        processes_t_ns: T0,
        errors: vec![],
        energy_stale: false,
        counters_stale: false,
    };
    let host = HostSample {
        slow_t_ns: T0,
        cpu_total_pct: 37.5,
        cpu_per_core_pct: vec![12.5, 0.1],
        memory_total_bytes: 64 << 30,
        memory_used_bytes: 20 << 30,
        memory_available_bytes: 40 << 30,
        swap_used_bytes: 1 << 20,
        load1: 1.5,
        load5: 1.25,
        load15: 0.75,
        net: vec![NetInterfaceReading {
            name: "eth0".into(),
            rx_bytes: 1000,
            tx_bytes: 2000,
            rx_packets: 10,
            tx_packets: 20,
            rx_errors: 1,
            tx_errors: 2,
            rx_dropped: 3,
            tx_dropped: 4,
            operstate: "up".into(),
            carrier: Some(true),
        }],
        errors: vec![],
    };
    let rdma = RdmaSample {
        devices: vec![RdmaDeviceReading {
            device: "rdmap16s27".into(),
            values: vec![77],
            ports: vec![RdmaPortReading {
                port: 1,
                values: vec![5_000_000, 250_000],
                errors: vec![],
                state: "4: ACTIVE".into(),
                netdev_operstate: "up".into(),
                netdev_carrier: Some(true),
            }],
            errors: vec![],
        }],
    };
    let selfs = SelfSample {
        cpu_seconds_total: 12.25,
        rss_bytes: 23 << 20,
        ring_samples: 3600,
        ring_bytes_estimate: 48 << 20,
        streams_active: 1,
        calls: vec![CallCost {
            name: "gpu.memory".into(),
            count: 10,
            mean_ns: 45_000,
            max_ns: 120_000,
        }],
        shares_process: false,
    };
    let mk = |seq: u64, d: sample::Data| Sample {
        seq,
        t_ns: T0 + seq * 1_000_000,
        collect_ns: 1000 * seq,
        data: Some(d),
    };
    let samples = vec![
        mk(1, sample::Data::Gpu(GpuSample { gpus: vec![gpu] })),
        mk(2, sample::Data::Host(host)),
        mk(3, sample::Data::Rdma(rdma)),
        mk(4, sample::Data::SelfStats(selfs)),
    ];
    (inv, samples)
}

type Series = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

/// `/metrics` text → family → (labels, value). The canned label values hold no
/// escapes, commas or braces.
fn parse_metrics(text: &str) -> Series {
    let mut out = Series::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split(',')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect();
        out.entry(name.to_string())
            .or_default()
            .push((labels, value.parse().unwrap()));
    }
    out
}

fn parse_csv(text: &str) -> Series {
    let mut out = Series::new();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("run,host,seq,t_ns,t_coord_ns,metric,labels,value")
    );
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 8, "{line}");
        let labels = f[6]
            .split(';')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        out.entry(f[5].to_string())
            .or_default()
            .push((labels, f[7].parse().unwrap()));
    }
    out
}

fn parse_json(text: &str) -> Series {
    let mut out = Series::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let labels = v["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        out.entry(v["metric"].as_str().unwrap().to_string())
            .or_default()
            .push((labels, v["value"].as_f64().unwrap()));
    }
    out
}

fn exported(format: Format, inv: &Inventory, samples: &[Sample]) -> String {
    let mut store = Store::in_memory().unwrap();
    let run = store.create_run(RunKind::Record, "", T0, "{}").unwrap();
    let agent = store.agent_id("127.0.0.1:1", inv).unwrap();
    store.add_run_agent(run, agent).unwrap();
    store.save_inventory(run, agent, inv).unwrap();
    store.save_samples(run, agent, samples).unwrap();
    let mut out = Vec::new();
    export(&store, run, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Every export point has a `/metrics` series of the same name whose labels
/// include the point's, with the same value; every name in `names` is there.
fn agree(what: &str, export: &Series, metrics: &Series, names: &BTreeSet<String>) {
    for name in names {
        let points = export
            .get(name)
            .unwrap_or_else(|| panic!("{what} lacks {name}"));
        let series = &metrics[name];
        for (labels, value) in points {
            assert!(
                series
                    .iter()
                    .any(|(l, v)| v == value && labels.iter().all(|(k, x)| l.get(k) == Some(x))),
                "{what} {name}{labels:?} = {value}; /metrics has {series:?}"
            );
        }
    }
    let extra: Vec<&String> = export
        .keys()
        .filter(|n| !names.contains(*n) && *n != "event")
        .collect();
    assert!(
        extra.is_empty(),
        "{what} has names outside the catalogue: {extra:?}"
    );
}

#[test]
fn metrics_csv_and_json_carry_every_catalogue_family_alike() {
    let (inv, samples) = canned();
    let r = match &samples[0].data {
        Some(sample::Data::Gpu(g)) => &g.gpus[0],
        _ => unreachable!(),
    };
    for e in gpu::READINGS {
        assert!(
            (e.read)(r).is_some(),
            "canned GPU reading lacks {}",
            e.def.name
        );
    }

    let refs: Vec<&Sample> = samples.iter().collect();
    let metrics = parse_metrics(&render(&inv, &refs, &[(0, 79, 1)]));

    // Every fixed family on /metrics.
    for d in catalog::families() {
        assert!(metrics.contains_key(d.name), "/metrics lacks {}", d.name);
    }
    // The sampled families and the RDMA counter families in both exports.
    let mut names: BTreeSet<String> = catalog::sampled_families()
        .map(|d| d.name.to_string())
        .collect();
    names.extend(
        PORT_COUNTERS
            .iter()
            .map(|c| CounterFamily(Scope::Port, c).to_string()),
    );
    names.extend(
        DEVICE_COUNTERS
            .iter()
            .map(|c| CounterFamily(Scope::Device, c).to_string()),
    );
    for n in [
        "servescope_gpu_ecc_corrected_errors_total",
        "servescope_gpu_ecc_uncorrected_errors_total",
        "servescope_gpu_correctable_remapped_rows",
        "servescope_gpu_uncorrectable_remapped_rows",
        "servescope_gpu_remapped_rows_pending",
        "servescope_gpu_remapped_rows_failure",
    ] {
        assert!(names.contains(n), "{n}");
    }
    let csv = parse_csv(&exported(Format::Csv, &inv, &samples));
    let json = parse_json(&exported(Format::Json, &inv, &samples));
    agree("CSV", &csv, &metrics, &names);
    agree("JSON", &json, &metrics, &names);
    // The inventory families are /metrics only.
    for d in catalog::inventory_families() {
        assert!(!csv.contains_key(d.name) && !json.contains_key(d.name));
    }
}
