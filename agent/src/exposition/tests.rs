use std::collections::{BTreeMap, BTreeSet};

use servescope_proto::v1::{
    Availability, CallCost, FieldError, GpuProcess, GpuSample, HostInfo, RdmaDeviceInfo,
    RdmaPortInfo, RdmaPortReading,
};

use super::*;

// ---------------------------------------------------------------------------------
// A small validator of the text format 0.0.4 (line grammar plus the rules promtool
// and the Prometheus parser enforce), used on everything render() produces.

#[derive(Debug)]
struct ParsedFamily {
    kind: String,
    help: bool,
    samples: Vec<(BTreeMap<String, String>, f64)>,
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !s.starts_with("__")
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.contains("inf") || s.contains("nan") => Err(format!("bad value {s:?}")),
        _ => s
            .parse::<f64>()
            .map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

/// Parses `{a="x",b="y"} rest` → (labels, rest).
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut s) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let name = &s[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        s = &s[end + 1..];
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after label value".into());
        }
    }
}

fn check_help_text(t: &str) -> Result<(), String> {
    let mut it = t.chars();
    while let Some(c) = it.next() {
        if c == '\\' && !matches!(it.next(), Some('\\' | 'n')) {
            return Err("bad escape in HELP".into());
        }
    }
    Ok(())
}

/// Validates `text`; returns the families in order.
fn validate(text: &str) -> Result<Vec<(String, ParsedFamily)>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("output does not end with a newline".into());
    }
    let mut fams: Vec<(String, ParsedFamily)> = Vec::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').ok_or_else(|| err("no help".into()))?;
            if !is_name(name) {
                return Err(err("bad name".into()));
            }
            check_help_text(help).map_err(err)?;
            if fams.iter().any(|(f, _)| f == name) {
                return Err(err("second HELP for family".into()));
            }
            if let Some((prev, _)) = fams.last() {
                closed.insert(prev.clone());
            }
            fams.push((
                name.to_string(),
                ParsedFamily {
                    kind: String::new(),
                    help: true,
                    samples: vec![],
                },
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| err("no type".into()))?;
            if !matches!(
                kind,
                "counter" | "gauge" | "histogram" | "summary" | "untyped"
            ) {
                return Err(err("bad type".into()));
            }
            let Some((cur, f)) = fams.last_mut() else {
                return Err(err("TYPE without HELP".into()));
            };
            if cur != name {
                return Err(err("TYPE does not follow its HELP".into()));
            }
            if !f.kind.is_empty() {
                return Err(err("second TYPE".into()));
            }
            if !f.samples.is_empty() {
                return Err(err("TYPE after samples".into()));
            }
            f.kind = kind.to_string();
        } else if line.starts_with('#') {
            return Err(err("unexpected comment".into()));
        } else {
            let end = line
                .find(['{', ' '])
                .ok_or_else(|| err("no value".into()))?;
            let name = &line[..end];
            if !is_name(name) {
                return Err(err("bad metric name".into()));
            }
            let (labels, rest) = parse_labels(&line[end..]).map_err(err)?;
            let rest = rest
                .strip_prefix(' ')
                .ok_or_else(|| err("no space".into()))?;
            let mut parts = rest.split(' ');
            let value = parse_value(parts.next().unwrap_or("")).map_err(err)?;
            if let Some(ts) = parts.next() {
                ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
            }
            if parts.next().is_some() {
                return Err(err("trailing fields".into()));
            }
            if closed.contains(name) {
                return Err(err("family is not contiguous".into()));
            }
            let Some((cur, f)) = fams.last_mut() else {
                return Err(err("sample before any HELP/TYPE".into()));
            };
            if cur != name {
                return Err(err(format!("sample outside its family (current: {cur})")));
            }
            if f.kind.is_empty() {
                return Err(err("sample before TYPE".into()));
            }
            if f.samples.iter().any(|(l, _)| *l == labels) {
                return Err(err("label set repeated in family".into()));
            }
            f.samples.push((labels, value));
        }
    }
    for (name, f) in &fams {
        if !f.help || f.kind.is_empty() {
            return Err(format!("{name}: missing HELP or TYPE"));
        }
        if f.samples.is_empty() {
            return Err(format!("{name}: family without samples"));
        }
        match f.kind.as_str() {
            "counter" if !name.ends_with("_total") => {
                return Err(format!("{name}: counter without _total"));
            }
            "gauge" if name.ends_with("_total") => {
                return Err(format!("{name}: gauge with _total"));
            }
            _ => {}
        }
        if f.samples.iter().any(|(_, v)| v.is_nan()) {
            return Err(format!("{name}: NaN value"));
        }
    }
    Ok(fams)
}

fn family<'a>(fams: &'a [(String, ParsedFamily)], name: &str) -> Option<&'a ParsedFamily> {
    fams.iter().find(|(n, _)| n == name).map(|(_, f)| f)
}

// ---------------------------------------------------------------------------------
// Fixture: 1 GPU with some None fields, 2 RDMA devices, 2 cores, 2 interfaces.

const T0: u64 = 1_700_000_000_000_000_000;

fn fixture() -> (Inventory, Vec<Sample>) {
    let inv = Inventory {
        hostname: "node-1".into(),
        agent_version: "0.1.0".into(),
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
            uuid: "GPU-abc".into(),
            pci_bus_id: "0000:53:00.0".into(),
            numa_node: Some(0),
            memory_total_bytes: 85_520_809_984,
            nvlink_links: 0,
            architecture: "Hopper".into(),
        }],
        rdma_devices: vec![
            RdmaDeviceInfo {
                name: "rdmap16s27".into(),
                driver: "efa".into(),
                pci_address: "0000:10:00.0".into(),
                numa_node: Some(0),
                ports: vec![RdmaPortInfo {
                    port: 1,
                    state: "4: ACTIVE".into(),
                    rate: "100 Gb/sec (4X EDR)".into(),
                    netdev: "enp16s0".into(),
                    counter_names: vec![
                        "hw_counters/rdma_read_bytes".into(),
                        "hw_counters/tx_bytes".into(),
                        "hw_counters/lifespan".into(),
                        "hw_counters/retrans_bytes".into(),
                    ],
                    ..Default::default()
                }],
                device_counter_names: vec![
                    "submitted_cmds".into(),
                    "cmds_err".into(),
                    "mmap_err".into(),
                ],
                pci_path: vec![],
            },
            RdmaDeviceInfo {
                name: "mlx5_0".into(),
                driver: "mlx5_core".into(),
                pci_address: "0000:e1:00.0".into(),
                numa_node: None,
                ports: vec![
                    RdmaPortInfo {
                        port: 1,
                        state: "4: ACTIVE".into(),
                        netdev: "ens1f0".into(),
                        counter_names: vec![
                            "counters/port_xmit_data".into(),
                            "counters/VL15_dropped".into(),
                            "hw_counters/Weird-Name.x".into(),
                            "hw_counters/tx_bytes".into(),
                        ],
                        ..Default::default()
                    },
                    RdmaPortInfo {
                        port: 2,
                        state: "1: DOWN".into(),
                        netdev: "ens1f1".into(),
                        counter_names: vec!["counters/port_xmit_data".into()],
                        ..Default::default()
                    },
                ],
                device_counter_names: vec![],
                pci_path: vec![],
            },
        ],
        host: Some(HostInfo {
            os: "Debian 12".into(),
            kernel: "6.1.0".into(),
            cpu_count: 2,
            memory_total_bytes: 1 << 34,
            net_interfaces: vec!["lo".into(), "eth0".into()],
        }),
        ..Default::default()
    };

    let gpu = GpuReading {
        index: 0,
        memory_used_bytes: Some(6_636 << 20),
        memory_free_bytes: Some(1_000),
        memory_reserved_bytes: None,
        util_gpu_pct: Some(37),
        util_memory_pct: None,
        sm_clock_mhz: Some(1980),
        mem_clock_mhz: Some(2619),
        power_mw: Some(700_123),
        energy_mj: Some(123_456_789),
        temperature_c: None,
        throttle_reasons: Some(0x4),
        pcie_tx_bytes: Some(5_000_000_000),
        pcie_rx_bytes: None,
        nvlink_tx_bytes: None,
        nvlink_rx_bytes: None,
        ecc_corrected_total: Some(3),
        ecc_uncorrected_total: Some(0),
        remapped_rows_correctable: Some(1),
        remapped_rows_uncorrectable: None,
        remapped_rows_pending: Some(true),
        remapped_rows_failure: None,
        processes: vec![
            GpuProcess {
                pid: 4242,
                name: "vllm \"serve\" C:\\models".into(),
                used_bytes: 27_244 << 20,
            },
            GpuProcess {
                pid: 7,
                name: "two\nlines".into(),
                used_bytes: 1,
            },
        ],
        processes_t_ns: T0,
        energy_stale: false,
        counters_stale: false,
        errors: vec![FieldError {
            field: "temperature".into(),
            error: "NotSupported".into(),
        }],
    };

    let host = HostSample {
        slow_t_ns: 0,
        cpu_total_pct: 12.5,
        cpu_per_core_pct: vec![25.0, f32::NAN],
        memory_total_bytes: 1 << 34,
        memory_used_bytes: 1 << 33,
        memory_available_bytes: 1 << 32,
        swap_used_bytes: 0,
        load1: 0.5,
        load5: 0.25,
        load15: 1.0,
        net: vec![
            NetInterfaceReading {
                name: "lo".into(),
                rx_bytes: 10,
                tx_bytes: 10,
                operstate: "unknown".into(),
                ..Default::default()
            },
            NetInterfaceReading {
                name: "eth0".into(),
                rx_bytes: 1_234_567,
                tx_bytes: 7_654_321,
                rx_packets: 1000,
                tx_packets: 900,
                rx_errors: 1,
                tx_errors: 2,
                rx_dropped: 3,
                tx_dropped: 4,
                operstate: "up".into(),
                carrier: Some(true),
            },
        ],
        errors: vec![],
    };

    let rdma = RdmaSample {
        devices: vec![
            RdmaDeviceReading {
                device: "rdmap16s27".into(),
                values: vec![100, 0, 0],
                ports: vec![RdmaPortReading {
                    port: 1,
                    values: vec![1_048_576, 2_000, 10, 0],
                    // retrans_bytes could not be read: it reads 0 and must be left out.
                    errors: vec![FieldError {
                        // As the RDMA collector names it.
                        field: "rdmap16s27/1/hw_counters/retrans_bytes".into(),
                        error: "EIO".into(),
                    }],
                    state: "4: ACTIVE".into(),
                    netdev_operstate: "up".into(),
                    netdev_carrier: Some(false),
                }],
                errors: vec![FieldError {
                    field: "rdmap16s27/hw_counters/mmap_err".into(),
                    error: "EIO".into(),
                }],
            },
            RdmaDeviceReading {
                device: "mlx5_0".into(),
                values: vec![],
                ports: vec![
                    RdmaPortReading {
                        port: 1,
                        values: vec![4_000, 5, 6, 7],
                        errors: vec![],
                        state: "4: ACTIVE".into(),
                        netdev_operstate: "up".into(),
                        netdev_carrier: Some(true),
                    },
                    RdmaPortReading {
                        port: 2,
                        values: vec![0],
                        errors: vec![],
                        state: "1: DOWN".into(),
                        netdev_operstate: "down".into(),
                        netdev_carrier: None,
                    },
                ],
                errors: vec![],
            },
        ],
    };

    let selfs = SelfSample {
        cpu_seconds_total: 1.5,
        rss_bytes: 20 << 20,
        ring_samples: 120,
        ring_bytes_estimate: 65_536,
        streams_active: 2,
        calls: vec![CallCost {
            name: "gpu.memory".into(),
            count: 4,
            mean_ns: 250_000,
            max_ns: 1_000_000,
        }],
    };

    let mk = |seq: u64, data| Sample {
        seq,
        t_ns: T0 + seq * 1_000_000,
        collect_ns: 500_000,
        data: Some(data),
    };
    let samples = vec![
        mk(1, sample::Data::Gpu(GpuSample { gpus: vec![gpu] })),
        mk(2, sample::Data::Host(host)),
        mk(3, sample::Data::Rdma(rdma)),
        mk(4, sample::Data::SelfStats(selfs)),
        mk(
            5,
            sample::Data::Event(servescope_proto::v1::Event {
                kind: "xid".into(),
                ..Default::default()
            }),
        ),
    ];
    (inv, samples)
}

fn render_fixture() -> String {
    let (inv, samples) = fixture();
    let refs: Vec<&Sample> = samples.iter().collect();
    render(&inv, &refs, &[(0, 79, 2), (0, 48, 1)])
}

fn lines(text: &str) -> BTreeSet<&str> {
    text.lines().collect()
}

// ---------------------------------------------------------------------------------

#[test]
fn fixture_output_is_valid_text_format() {
    let text = render_fixture();
    validate(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
}

#[test]
fn example_output_is_valid_text_format() {
    let text = example_output();
    let fams = validate(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    assert_eq!(
        family(&fams, "servescope_gpu_info").unwrap().samples.len(),
        8
    );
    assert_eq!(
        family(&fams, "servescope_host_cpu_core_utilization_ratio")
            .unwrap()
            .samples
            .len(),
        192
    );
    // GPU 7 had no NVLink reading.
    assert_eq!(
        family(&fams, "servescope_gpu_nvlink_transmit_bytes_total")
            .unwrap()
            .samples
            .len(),
        7
    );
    assert_eq!(
        family(&fams, "servescope_rdma_port_rdma_read_bytes_total")
            .unwrap()
            .samples
            .len(),
        4
    );
}

#[test]
fn exact_lines() {
    let text = render_fixture();
    let got = lines(&text);
    let gpu = r#"gpu="0",uuid="GPU-abc",pci_bus_id="0000:53:00.0",name="NVIDIA H100 80GB HBM3""#;
    let want = [
        "# HELP servescope_gpu_memory_used_bytes GPU framebuffer memory in use.".to_string(),
        "# TYPE servescope_gpu_memory_used_bytes gauge".into(),
        format!("servescope_gpu_memory_used_bytes{{{gpu}}} 6958350336"),
        format!("servescope_gpu_utilization_ratio{{{gpu}}} 0.37"),
        format!("servescope_gpu_sm_clock_hertz{{{gpu}}} 1980000000"),
        format!("servescope_gpu_power_watts{{{gpu}}} 700.123"),
        "# TYPE servescope_gpu_energy_joules_total counter".into(),
        format!("servescope_gpu_energy_joules_total{{{gpu}}} 123456.789"),
        format!("servescope_gpu_throttle_reasons{{{gpu}}} 4"),
        format!("servescope_gpu_pcie_transmit_bytes_total{{{gpu}}} 5000000000"),
        format!("servescope_gpu_ecc_corrected_errors_total{{{gpu}}} 3"),
        format!("servescope_gpu_remapped_rows_pending{{{gpu}}} 1"),
        format!("servescope_gpu_memory_total_bytes{{{gpu}}} 85520809984"),
        r#"servescope_gpu_info{gpu="0",uuid="GPU-abc",name="NVIDIA H100 80GB HBM3",pci_bus_id="0000:53:00.0",numa_node="0"} 1"#.into(),
        r#"servescope_gpu_xid_errors_total{gpu="0",uuid="GPU-abc",xid="79"} 2"#.into(),
        "servescope_nvml_up 1".into(),
        r#"servescope_agent_build_info{version="0.1.0"} 1"#.into(),
        "servescope_agent_cpu_seconds_total 1.5".into(),
        "servescope_agent_resident_memory_bytes 20971520".into(),
        "servescope_agent_streams_active 2".into(),
        r#"servescope_agent_collector_call_seconds{call="gpu.memory",stat="mean"} 0.00025"#.into(),
        r#"servescope_agent_collector_call_seconds{call="gpu.memory",stat="max"} 0.001"#.into(),
        r#"servescope_sample_timestamp_seconds{kind="host"} 1700000000.002"#.into(),
        r#"servescope_sample_field_errors{kind="gpu"} 1"#.into(),
        r#"servescope_sample_field_errors{kind="rdma"} 2"#.into(),
        "servescope_host_cpu_utilization_ratio 0.125".into(),
        r#"servescope_host_cpu_core_utilization_ratio{cpu="0"} 0.25"#.into(),
        "servescope_host_memory_available_bytes 4294967296".into(),
        "servescope_host_load5 0.25".into(),
        "# TYPE servescope_host_network_receive_bytes_total counter".into(),
        r#"servescope_host_network_receive_bytes_total{interface="eth0"} 1234567"#.into(),
        r#"servescope_host_network_transmit_drops_total{interface="eth0"} 4"#.into(),
        r#"servescope_host_network_up{interface="eth0"} 1"#.into(),
        r#"servescope_host_network_up{interface="lo"} 0"#.into(),
        "# TYPE servescope_rdma_port_rdma_read_bytes_total counter".into(),
        r#"servescope_rdma_port_rdma_read_bytes_total{device="rdmap16s27",port="1"} 1048576"#.into(),
        r#"servescope_rdma_port_tx_bytes_total{device="rdmap16s27",port="1"} 2000"#.into(),
        r#"servescope_rdma_port_tx_bytes_total{device="mlx5_0",port="1"} 7"#.into(),
        r#"servescope_rdma_port_counters_port_xmit_data_total{device="mlx5_0",port="1"} 4000"#.into(),
        r#"servescope_rdma_port_counters_port_xmit_data_total{device="mlx5_0",port="2"} 0"#.into(),
        r#"servescope_rdma_port_counters_vl15_dropped_total{device="mlx5_0",port="1"} 5"#.into(),
        r#"servescope_rdma_port_weird_name_x_total{device="mlx5_0",port="1"} 6"#.into(),
        r#"servescope_rdma_device_submitted_cmds_total{device="rdmap16s27"} 100"#.into(),
        r#"servescope_rdma_device_cmds_err_total{device="rdmap16s27"} 0"#.into(),
        r#"servescope_rdma_port_active{device="rdmap16s27",port="1"} 1"#.into(),
        r#"servescope_rdma_port_active{device="mlx5_0",port="2"} 0"#.into(),
        r#"servescope_rdma_port_rate_bytes_per_second{device="rdmap16s27",port="1"} 12500000000"#.into(),
        // operstate up but carrier down: not up.
        r#"servescope_rdma_netdev_up{device="rdmap16s27",port="1",netdev="enp16s0"} 0"#.into(),
        r#"servescope_rdma_netdev_up{device="mlx5_0",port="1",netdev="ens1f0"} 1"#.into(),
        r#"servescope_rdma_device_info{device="rdmap16s27",driver="efa",pci_address="0000:10:00.0",numa_node="0"} 1"#.into(),
        r#"servescope_rdma_device_info{device="mlx5_0",driver="mlx5_core",pci_address="0000:e1:00.0",numa_node=""} 1"#.into(),
    ];
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w.as_str())).collect();
    assert!(
        missing.is_empty(),
        "missing lines:\n{missing:#?}\n---\n{text}"
    );
}

#[test]
fn label_values_are_escaped() {
    let text = render_fixture();
    let got = lines(&text);
    let want = [
        r#"servescope_gpu_process_memory_used_bytes{gpu="0",uuid="GPU-abc",pid="4242",process="vllm \"serve\" C:\\models"} 28567404544"#,
        r#"servescope_gpu_process_memory_used_bytes{gpu="0",uuid="GPU-abc",pid="7",process="two\nlines"} 1"#,
    ];
    for w in want {
        assert!(got.contains(w), "missing {w}\n---\n{text}");
    }
    // And the validator unescapes them back to the original.
    let fams = validate(&text).unwrap();
    let procs = family(&fams, "servescope_gpu_process_memory_used_bytes").unwrap();
    let names: BTreeSet<&str> = procs
        .samples
        .iter()
        .map(|(l, _)| l["process"].as_str())
        .collect();
    assert!(names.contains("vllm \"serve\" C:\\models"));
    assert!(names.contains("two\nlines"));
}

#[test]
fn help_and_type_once_per_family_and_every_sample_declared() {
    let text = render_fixture();
    let mut helps = BTreeSet::new();
    let mut types = BTreeSet::new();
    for l in text.lines() {
        if let Some(r) = l.strip_prefix("# HELP ") {
            assert!(helps.insert(r.split(' ').next().unwrap()), "{l}");
        } else if let Some(r) = l.strip_prefix("# TYPE ") {
            assert!(types.insert(r.split(' ').next().unwrap()), "{l}");
        } else {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(types.contains(name), "undeclared: {l}");
        }
    }
    assert_eq!(helps, types);
}

#[test]
fn none_and_non_finite_values_are_omitted() {
    let text = render_fixture();
    for absent in [
        "servescope_gpu_temperature_celsius",
        "servescope_gpu_memory_reserved_bytes",
        "servescope_gpu_memory_utilization_ratio",
        "servescope_gpu_pcie_receive_bytes_total",
        "servescope_gpu_nvlink_transmit_bytes_total",
        "servescope_gpu_uncorrectable_remapped_rows",
        "servescope_gpu_remapped_rows_failure",
        // Skipped: a setting, not a counter.
        "servescope_rdma_port_lifespan_total",
    ] {
        assert!(!text.contains(absent), "{absent} present\n{text}");
    }
    let fams = validate(&text).unwrap();
    for (name, f) in &fams {
        assert!(f.samples.iter().all(|(_, v)| v.is_finite()), "{name}");
    }
    assert!(
        !text.contains(" NaN\n") && !text.contains(" inf\n"),
        "{text}"
    );
    // The NaN core is left out, the other one is there.
    assert!(text.contains("{cpu=\"0\"}") && !text.contains("{cpu=\"1\"}"));
    // A counter the collector could not read (reported as 0) is left out.
    assert!(!text.contains("servescope_rdma_port_retrans_bytes_total{device=\"rdmap16s27\""));
    assert!(!text.contains("servescope_rdma_device_mmap_err_total"));
}

#[test]
fn events_are_ignored_and_latest_sample_wins() {
    let (inv, mut samples) = fixture();
    let mut newer = samples[1].clone();
    newer.t_ns += 10_000_000_000;
    if let Some(sample::Data::Host(h)) = &mut newer.data {
        h.load1 = 42.0;
    }
    // Given first in the slice, but newer.
    samples.insert(0, newer);
    let refs: Vec<&Sample> = samples.iter().collect();
    let text = render(&inv, &refs, &[]);
    validate(&text).unwrap();
    assert!(text.contains("\nservescope_host_load1 42\n"), "{text}");
    assert!(!text.contains("kind=\"event\""));
    assert!(!text.contains("servescope_gpu_xid_errors_total"));
}

#[test]
fn empty_inventory_renders_valid_minimal_output() {
    let text = render(&Inventory::default(), &[], &[]);
    let fams = validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let names: Vec<&str> = fams.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "servescope_agent_build_info",
            "servescope_nvml_up",
            "servescope_host_info"
        ]
    );
    assert!(text.contains("\nservescope_nvml_up 0\n"));
}

#[test]
fn duplicates_in_input_do_not_repeat_label_sets() {
    let (mut inv, mut samples) = fixture();
    inv.gpus.push(inv.gpus[0].clone());
    inv.rdma_devices.push(inv.rdma_devices[0].clone());
    if let Some(sample::Data::Gpu(g)) = &mut samples[0].data {
        g.gpus.push(g.gpus[0].clone());
        let p = g.gpus[0].processes[0].clone();
        g.gpus[0].processes.push(p);
    }
    if let Some(sample::Data::Host(h)) = &mut samples[1].data {
        h.net.push(h.net[1].clone());
    }
    if let Some(sample::Data::SelfStats(s)) = &mut samples[3].data {
        s.calls.push(s.calls[0].clone());
    }
    let refs: Vec<&Sample> = samples.iter().collect();
    let text = render(&inv, &refs, &[(0, 79, 1), (0, 79, 5)]);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn per_process_can_be_turned_off() {
    let (inv, samples) = fixture();
    let refs: Vec<&Sample> = samples.iter().collect();
    let text = render_with(&inv, &refs, &[], &RenderOptions { per_process: false });
    validate(&text).unwrap();
    assert!(!text.contains("servescope_gpu_process_memory_used_bytes"));
}

#[test]
fn render_into_reuses_the_buffer() {
    let (inv, samples) = fixture();
    let refs: Vec<&Sample> = samples.iter().collect();
    let mut buf = String::new();
    render_into(&mut buf, &inv, &refs, &[], &RenderOptions::default());
    let first = buf.clone();
    let cap = buf.capacity();
    render_into(&mut buf, &inv, &refs, &[], &RenderOptions::default());
    assert_eq!(buf, first);
    assert_eq!(buf.capacity(), cap, "second render grew the buffer");
}

#[test]
fn metric_table_is_consistent() {
    let mut names = BTreeSet::new();
    for &m in Metric::ALL {
        let d = m.def();
        assert!(names.insert(d.name), "duplicate {}", d.name);
        assert!(
            is_name(d.name) && d.name.starts_with("servescope_"),
            "{}",
            d.name
        );
        assert!(d
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        assert!(!d.help.is_empty() && !d.help.contains('\n') && !d.help.contains('\\'));
        let base = match d.kind {
            MetricType::Counter => d
                .name
                .strip_suffix("_total")
                .unwrap_or_else(|| panic!("counter {} lacks _total", d.name)),
            MetricType::Gauge => {
                assert!(!d.name.ends_with("_total"), "gauge {}", d.name);
                d.name
            }
        };
        if let Some(suffix) = d.unit.suffix() {
            assert!(base.ends_with(suffix), "{} should end in {suffix}", d.name);
        }
        for reserved in ["_count", "_sum", "_bucket"] {
            assert!(!d.name.ends_with(reserved), "{}", d.name);
        }
    }
}

#[test]
fn rdma_names_are_sanitized_and_collapsed() {
    let f = |raw: &str| Name::Rdma(RdmaScope::Port, raw).to_string();
    assert_eq!(
        f("hw_counters/rdma_read_bytes"),
        "servescope_rdma_port_rdma_read_bytes_total"
    );
    assert_eq!(
        f("counters/port_xmit_data"),
        "servescope_rdma_port_counters_port_xmit_data_total"
    );
    assert_eq!(
        f("hw_counters/Weird-Name.x"),
        "servescope_rdma_port_weird_name_x_total"
    );
    assert_eq!(f("hw_counters/é"), "servescope_rdma_port___total");
    assert_eq!(
        Name::Rdma(RdmaScope::Device, "submitted_cmds").to_string(),
        "servescope_rdma_device_submitted_cmds_total"
    );
    let names: Vec<String> = [
        "hw_counters/a-b",
        "hw_counters/a_b",
        "hw_counters/A.B",
        "hw_counters/lifespan",
        "counters/a_b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let fams = rdma_families(names.iter(), names.len());
    assert_eq!(fams, ["hw_counters/A.B", "counters/a_b"]);
    assert_eq!(rdma_position(&names, "hw_counters/A.B"), Some(2));
    assert_eq!(rdma_position(&names[..2], "hw_counters/A.B"), Some(0));
}

#[test]
fn helpers() {
    assert_eq!(
        parse_rate_bytes_per_second("100 Gb/sec (4X EDR)"),
        Some(12.5e9)
    );
    assert_eq!(
        parse_rate_bytes_per_second("400 Gb/sec (4X NDR)"),
        Some(50e9)
    );
    assert_eq!(parse_rate_bytes_per_second(""), None);
    assert_eq!(parse_rate_bytes_per_second("fast"), None);
    assert!(port_active("4: ACTIVE"));
    assert!(port_active("ACTIVE"));
    assert!(port_active("5: ACTIVE_DEFER"));
    assert!(!port_active("1: DOWN"));
    assert!(!port_active(""));
    assert!(link_up("up", None) && link_up("up", Some(true)));
    assert!(!link_up("up", Some(false)) && !link_up("down", Some(true)));
}

#[test]
fn validator_rejects_bad_text() {
    let bad = [
        "x 1\n",
        "# HELP a h\n# TYPE a gauge\na 1",
        "# HELP a h\n# TYPE a gauge\na 1\n# HELP a h\n",
        "# HELP a h\n# TYPE a gauge\n# TYPE a gauge\na 1\n",
        "# HELP a h\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
        "# HELP a h\n# TYPE a gauge\na{x=\"\\q\"} 1\n",
        "# HELP a h\n# TYPE a gauge\na{x=\"\"\"} 1\n",
        "# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\n# TYPE b gauge\nb 1\na 2\n",
        "# HELP a_total h\n# TYPE a_total gauge\na_total 1\n",
        "# HELP a h\n# TYPE a counter\na 1\n",
        "# HELP a h\n# TYPE a gauge\na NaN\n",
        "# HELP a h\n# TYPE a gauge\na inf\n",
        "# HELP a h\n# TYPE a gauge\n",
        "# HELP a h\n# TYPE a gauge\nb 1\n",
    ];
    for b in bad {
        assert!(validate(b).is_err(), "accepted: {b:?}");
    }
    assert!(validate("# HELP a h\\n\n# TYPE a gauge\na{x=\"\\\\\\\"\\n\"} -1.5e3 123\n").is_ok());
}
