//! A representative node (8 H100s, 4 EFA devices and one mlx5 NIC, 192 cores, a few
//! interfaces, awkward process names), for tests and for looking at the output.
//! Test support: built with `cfg(test)` or the `test-support` feature only.

use servescope_proto::v1::{
    sample, GpuInfo, GpuReading, HostSample, Inventory, NetInterfaceReading, RdmaDeviceReading,
    RdmaSample, Sample, SelfSample,
};

use super::render;
use crate::collect::rdma::fixture::{EFA_DEVICE_COUNTERS, EFA_PORT_COUNTERS};

/// Renders a p5.48xlarge-like node (8 H100s, 4 EFA devices and one mlx5 NIC, 192
/// cores, a few interfaces, awkward process names) as the `/metrics` page would.
#[doc(hidden)]
pub fn example_output() -> String {
    let (inv, samples) = example_node();
    let refs: Vec<&Sample> = samples.iter().collect();
    render(&inv, &refs, &[(0, 79, 1), (3, 94, 2), (3, 48, 1)])
}

#[doc(hidden)]
pub fn example_node() -> (Inventory, Vec<Sample>) {
    use servescope_proto::v1::{
        Availability, CallCost, GpuProcess, GpuSample, HostInfo, RdmaDeviceInfo, RdmaPortInfo,
        RdmaPortReading,
    };

    const MLX_PORT: &[&str] = &[
        "hw_counters/out_of_buffer",
        "hw_counters/np_cnp_sent",
        "hw_counters/rp_cnp_handled",
        "hw_counters/lifespan",
        "counters/port_xmit_data",
        "counters/port_rcv_data",
        "counters/port_xmit_packets",
        "counters/port_rcv_packets",
        "counters/VL15_dropped",
        "counters/symbol_error",
        "counters/link_downed",
    ];
    let t0: u64 = 1_763_900_000_000_000_000;
    let gib = 1u64 << 30;

    let gpus: Vec<GpuInfo> = (0..8u32)
        .map(|i| GpuInfo {
            index: i,
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: format!("GPU-5d3c1a2b-7e4f-4a1b-9c0d-00000000000{i}"),
            pci_bus_id: format!(
                "0000:{:02x}:00.0",
                [0x53, 0x64, 0x75, 0x86, 0x97, 0xa8, 0xb9, 0xca][i as usize]
            ),
            numa_node: Some(if i < 4 { 0 } else { 1 }),
            memory_total_bytes: 80 * gib,
            nvlink_links: 18,
            architecture: "Hopper".into(),
        })
        .collect();

    let mut rdma_devices: Vec<RdmaDeviceInfo> = (0..4u32)
        .map(|i| RdmaDeviceInfo {
            name: format!("rdmap{}s27", 16 + i * 16),
            driver: "efa".into(),
            pci_address: format!("0000:{:02x}:00.0", 0x10 + i * 0x10),
            numa_node: Some(if i < 2 { 0 } else { 1 }),
            ports: vec![RdmaPortInfo {
                port: 1,
                state: "4: ACTIVE".into(),
                phys_state: "5: LinkUp".into(),
                rate: "100 Gb/sec (4X EDR)".into(),
                link_layer: "Unspecified".into(),
                netdev: format!("enp{}s0", 16 + i * 16),
                counter_names: EFA_PORT_COUNTERS
                    .iter()
                    .chain(&["lifespan"])
                    .map(|c| format!("hw_counters/{c}"))
                    .collect(),
            }],
            device_counter_names: EFA_DEVICE_COUNTERS.iter().map(|c| c.to_string()).collect(),
            pci_path: vec!["pci0000:00".into()],
        })
        .collect();
    rdma_devices.push(RdmaDeviceInfo {
        name: "mlx5_0".into(),
        driver: "mlx5_core".into(),
        pci_address: "0000:e1:00.0".into(),
        numa_node: None,
        ports: vec![RdmaPortInfo {
            port: 1,
            state: "1: DOWN".into(),
            phys_state: "3: Disabled".into(),
            rate: "200 Gb/sec (4X HDR)".into(),
            link_layer: "Ethernet".into(),
            netdev: "ens1f0np0".into(),
            counter_names: MLX_PORT.iter().map(|c| c.to_string()).collect(),
        }],
        device_counter_names: vec![],
        pci_path: vec![],
    });

    let inv = Inventory {
        hostname: "p5-node-a".into(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        agent_instance: 0x5eed,
        agent_start_ns: t0 - 3_600_000_000_000,
        now_ns: t0,
        sample_interval_ns: 1_000_000_000,
        gpu: Some(Availability {
            available: true,
            detail: "libnvidia-ml.so.1".into(),
        }),
        driver_version: "580.82.07".into(),
        cuda_driver_version: "13.0".into(),
        nvml_version: "13.580.82.07".into(),
        gpus,
        rdma_devices,
        host: Some(HostInfo {
            os: "Ubuntu 22.04.5 LTS".into(),
            kernel: "6.8.0-1031-aws".into(),
            cpu_count: 192,
            memory_total_bytes: 2048 * gib,
            net_interfaces: vec!["lo".into(), "enp71s0".into()],
        }),
        ..Default::default()
    };

    let readings: Vec<GpuReading> = (0..8u32)
        .map(|i| {
            let i64_ = u64::from(i);
            GpuReading {
                index: i,
                memory_used_bytes: Some(70 * gib + i64_ * 1_000_000),
                memory_reserved_bytes: Some(512 << 20),
                memory_free_bytes: Some(10 * gib - (512 << 20) - i64_ * 1_000_000),
                util_gpu_pct: Some(99 - i),
                util_memory_pct: Some(60 + i),
                sm_clock_mhz: Some(1980),
                mem_clock_mhz: Some(2619),
                power_mw: Some(690_512 + i * 1000),
                energy_mj: Some(9_876_543_210 + i64_),
                temperature_c: Some(61 + i),
                throttle_reasons: Some(if i == 5 { 0x4 } else { 0 }),
                pcie_tx_bytes: Some(123_456_789_012 + i64_),
                pcie_rx_bytes: Some(987_654_321_098 + i64_),
                // GPU 7 could not read NVLink this tick.
                nvlink_tx_bytes: (i != 7).then_some(4_400_000_000_000 + i64_),
                nvlink_rx_bytes: (i != 7).then_some(4_300_000_000_000 + i64_),
                ecc_corrected_total: Some(u64::from(i == 2)),
                ecc_uncorrected_total: Some(0),
                remapped_rows_correctable: Some(0),
                remapped_rows_uncorrectable: Some(0),
                remapped_rows_pending: Some(false),
                remapped_rows_failure: Some(false),
                processes: vec![
                    GpuProcess {
                        pid: 41_000 + i,
                        name: "ray::RayWorkerWrapper".into(),
                        used_bytes: 69 * gib,
                    },
                    GpuProcess {
                        pid: 900 + i,
                        name: "python3 -c \"print(\\\"hi\\\")\"\nsecond line".into(),
                        used_bytes: 600 << 20,
                    },
                ],
                processes_t_ns: t0 - 500_000_000,
                errors: vec![],
                energy_stale: false,
                // counters_stale and any later field: their defaults.
                ..Default::default()
            }
        })
        .collect();

    let mut samples = vec![
        Sample {
            seq: 100,
            t_ns: t0,
            collect_ns: 612_000,
            data: Some(sample::Data::Gpu(GpuSample { gpus: readings })),
        },
        Sample {
            seq: 101,
            t_ns: t0 + 1_000_000,
            collect_ns: 250_000,
            data: Some(sample::Data::Host(HostSample {
                slow_t_ns: t0,
                cpu_total_pct: 37.5,
                cpu_per_core_pct: (0..192).map(|c| (c % 100) as f32 + 0.5).collect(),
                memory_total_bytes: 2048 * gib,
                memory_used_bytes: 300 * gib,
                memory_available_bytes: 1700 * gib,
                swap_used_bytes: 0,
                load1: 12.5,
                load5: 10.25,
                load15: 8.0,
                net: vec![
                    NetInterfaceReading {
                        name: "lo".into(),
                        rx_bytes: 1_000_000,
                        tx_bytes: 1_000_000,
                        rx_packets: 10_000,
                        tx_packets: 10_000,
                        operstate: "unknown".into(),
                        carrier: Some(true),
                        ..Default::default()
                    },
                    NetInterfaceReading {
                        name: "enp71s0".into(),
                        rx_bytes: 98_765_432_100,
                        tx_bytes: 12_345_678_900,
                        rx_packets: 70_000_000,
                        tx_packets: 20_000_000,
                        rx_errors: 0,
                        tx_errors: 1,
                        rx_dropped: 12,
                        tx_dropped: 0,
                        operstate: "up".into(),
                        carrier: Some(true),
                    },
                ],
                errors: vec![],
            })),
        },
        Sample {
            seq: 103,
            t_ns: t0 + 3_000_000,
            collect_ns: 40_000,
            data: Some(sample::Data::SelfStats(SelfSample {
                cpu_seconds_total: 12.34,
                rss_bytes: 23 << 20,
                ring_samples: 36_000,
                ring_bytes_estimate: 48 << 20,
                streams_active: 1,
                calls: vec![
                    CallCost {
                        name: "gpu.memory".into(),
                        count: 10,
                        mean_ns: 45_000,
                        max_ns: 120_000,
                    },
                    CallCost {
                        name: "gpu.processes".into(),
                        count: 1,
                        mean_ns: 150_000_000,
                        max_ns: 150_000_000,
                    },
                ],
                shares_process: false,
            })),
        },
    ];

    let devices = inv
        .rdma_devices
        .iter()
        .map(|d| RdmaDeviceReading {
            device: d.name.clone(),
            values: (1..=d.device_counter_names.len() as u64).collect(),
            ports: d
                .ports
                .iter()
                .map(|p| RdmaPortReading {
                    port: p.port,
                    values: (0..p.counter_names.len() as u64)
                        .map(|k| 1_000_000 * (k + 1))
                        .collect(),
                    errors: vec![],
                    state: p.state.clone(),
                    netdev_operstate: if d.driver == "efa" { "up" } else { "down" }.into(),
                    netdev_carrier: Some(d.driver == "efa"),
                })
                .collect(),
            errors: vec![],
            values_stale: false,
        })
        .collect();
    samples.push(Sample {
        seq: 102,
        t_ns: t0 + 2_000_000,
        collect_ns: 1_800_000,
        data: Some(sample::Data::Rdma(RdmaSample { devices })),
    });
    (inv, samples)
}
