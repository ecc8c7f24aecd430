//! The renderer on the fixture, the example node and edge cases.

use super::fixture::{fixture, lines, render_fixture};
use super::*;
use crate::exposition::rdma::{rdma_families, rdma_position};

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
fn rdma_names_are_collapsed() {
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
