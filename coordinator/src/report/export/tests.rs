//! `/metrics`, the CSV export and the JSON export carry every catalogue family
//! with the same name and the same value (so the same unit), on one canned node
//! whose sample fills every field.

use std::collections::{BTreeMap, BTreeSet};

use servescope_agent::exposition::{example_node, render};
use servescope_proto::catalog::rdma::{self, CounterFamily, Scope};
use servescope_proto::catalog::{self, gpu};
use servescope_proto::test_support::every_optional_scalar;
use servescope_proto::v1::{sample, GpuReading, Inventory, Sample};

use super::{export, Format};
use crate::store::{RunKind, Store};

const T0: u64 = 1_763_900_000_123_456_789;

/// The example node (8 GPUs, 5 RDMA devices, 192 cores, two interfaces) with every
/// GPU reading's `optional` fields set from the wire format alone (so a GPU metric
/// added to the `.proto` and the catalogue is covered without an edit here), the
/// processes with plain names kept (the parsers below read label values without
/// quoting or escapes), nothing stale, nothing failed.
fn canned() -> (Inventory, Vec<Sample>) {
    let (inv, mut samples) = example_node();
    for s in &mut samples {
        if let Some(sample::Data::Gpu(g)) = &mut s.data {
            for r in &mut g.gpus {
                r.processes
                    .retain(|p| !p.name.contains(['"', '\\', '\n', ',', ';', '{', '}']));
                *r = GpuReading {
                    index: r.index,
                    processes: std::mem::take(&mut r.processes),
                    processes_t_ns: r.processes_t_ns,
                    ..every_optional_scalar()
                };
            }
        }
    }
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
    for d in &inv.rdma_devices {
        let ports = d.ports.iter().flat_map(|p| &p.counter_names);
        let counters = (d.device_counter_names.iter().map(|c| (Scope::Device, c)))
            .chain(ports.map(|c| (Scope::Port, c)));
        names.extend(
            counters
                .filter(|(_, c)| rdma::exported(c))
                .map(|(scope, c)| CounterFamily(scope, c).to_string()),
        );
    }
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

/// Stale repeats (a GPU's memory read less often, an RDMA device's counters read
/// every few seconds) stay on `/metrics` as the latest value but are no new points
/// in the exports.
#[test]
fn stale_memory_and_rdma_device_counters_are_not_exported() {
    let (inv, mut samples) = canned();
    let mut stale_gpu = None;
    let mut stale_dev = None;
    for s in &mut samples {
        match &mut s.data {
            Some(sample::Data::Gpu(g)) => {
                g.gpus[0].memory_stale = true;
                stale_gpu = Some(g.gpus[0].index.to_string());
            }
            Some(sample::Data::Rdma(r)) => {
                let d = r.devices.iter_mut().find(|d| !d.values.is_empty()).unwrap();
                d.values_stale = true;
                stale_dev = Some(d.device.clone());
            }
            _ => {}
        }
    }
    let (gpu, dev) = (stale_gpu.unwrap(), stale_dev.unwrap());
    let info = inv.rdma_devices.iter().find(|d| d.name == dev).unwrap();
    let family = info
        .device_counter_names
        .iter()
        .find(|c| rdma::exported(c))
        .map(|c| CounterFamily(Scope::Device, c).to_string())
        .unwrap();
    let refs: Vec<&Sample> = samples.iter().collect();
    let metrics = parse_metrics(&render(&inv, &refs, &[(0, 79, 1)]));
    let csv = parse_csv(&exported(Format::Csv, &inv, &samples));
    let has = |s: &Series, name: &str, key: &str, value: &str| {
        s.get(name).is_some_and(|v| {
            v.iter()
                .any(|(l, _)| l.get(key).map(String::as_str) == Some(value))
        })
    };
    let memory = "servescope_gpu_memory_used_bytes";
    assert!(has(&metrics, memory, "gpu", &gpu) && has(&metrics, &family, "device", &dev));
    assert!(!has(&csv, memory, "gpu", &gpu), "{:?}", csv.get(memory));
    assert!(
        !has(&csv, &family, "device", &dev),
        "{:?}",
        csv.get(&family)
    );
    // The other GPUs' memory and the fresh readings are still there.
    assert!(csv[memory].iter().any(|(l, _)| l["gpu"] != gpu));
    assert!(has(&csv, "servescope_gpu_utilization_ratio", "gpu", &gpu));
}
