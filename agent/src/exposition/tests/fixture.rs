//! Fixture: 1 GPU with some None fields, 2 RDMA devices, 2 cores, 2 interfaces.

use super::*;

pub(super) const T0: u64 = 1_700_000_000_000_000_000;

pub(super) fn fixture() -> (Inventory, Vec<Sample>) {
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
        errors: vec![FieldError {
            field: "temperature".into(),
            error: "NotSupported".into(),
        }],
        ..Default::default()
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
                values_stale: false,
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
                values_stale: false,
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
        shares_process: false,
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

pub(super) fn render_fixture() -> String {
    let (inv, samples) = fixture();
    let refs: Vec<&Sample> = samples.iter().collect();
    render(&inv, &refs, &[(0, 79, 2), (0, 48, 1)])
}

pub(super) fn lines(text: &str) -> BTreeSet<&str> {
    text.lines().collect()
}
