//! GPU families: NVML availability, identity and per-GPU readings.
//!
//! Adding a GPU metric is one [`READINGS`] entry (plus the NVML read that fills
//! the `GpuReading` field): `/metrics`, the CSV/JSON export and the catalogue test
//! pick it up from here.

use super::{b01, milli, never, pct_ratio, Def, Entry, Labels, MetricType, Unit, Value};
use crate::v1::{GpuInfo, GpuProcess, GpuReading};

/// The identity labels every per-GPU series carries on `/metrics`
/// (dcgm-exporter style); the export keeps `gpu` alone.
pub const GPU_LABELS: &[&str] = &["gpu", "uuid", "pci_bus_id", "name"];

const GPU: Labels = Labels(GPU_LABELS);

pub const NVML_UP: Def = Def {
    name: "servescope_nvml_up",
    help: "1 if NVML was loaded and initialised, 0 otherwise.",
    kind: MetricType::Gauge,
    unit: Unit::None,
    labels: &[],
};

pub const DRIVER_INFO: Def = Def {
    name: "servescope_gpu_driver_info",
    help: "NVIDIA driver, CUDA driver and NVML versions; always 1.",
    kind: MetricType::Gauge,
    unit: Unit::None,
    labels: &["driver_version", "cuda_driver_version", "nvml_version"],
};

pub const INFO: Def = Def {
    name: "servescope_gpu_info",
    help: "GPU identity and placement; always 1.",
    kind: MetricType::Gauge,
    unit: Unit::None,
    labels: &["gpu", "uuid", "name", "pci_bus_id", "numa_node"],
};

/// Per-GPU inventory values, labelled by [`GPU_LABELS`].
pub const INVENTORY_VALUES: &[Entry<GpuInfo>] = &[
    Entry {
        def: Def {
            name: "servescope_gpu_memory_total_bytes",
            help: "Total GPU framebuffer memory.",
            kind: MetricType::Gauge,
            unit: Unit::Bytes,
            labels: GPU_LABELS,
        },
        read: |g| Some(Value::Int(g.memory_total_bytes)),
        stale: never,
    },
    Entry {
        def: Def {
            name: "servescope_gpu_nvlink_links",
            help: "Active NVLink links of the GPU.",
            kind: MetricType::Gauge,
            unit: Unit::None,
            labels: GPU_LABELS,
        },
        read: |g| Some(Value::Int(u64::from(g.nvlink_links))),
        stale: never,
    },
];

pub const XID_ERRORS: Def = Def {
    name: "servescope_gpu_xid_errors_total",
    help: "XID errors reported for the GPU since the agent started, by XID code.",
    kind: MetricType::Counter,
    unit: Unit::None,
    labels: &["gpu", "uuid", "xid"],
};

/// Families from the inventory (or the XID counts) alone.
pub const INVENTORY: &[&Def] = &[
    &NVML_UP,
    &DRIVER_INFO,
    &INFO,
    &INVENTORY_VALUES[0].def,
    &INVENTORY_VALUES[1].def,
    &XID_ERRORS,
];

const fn energy_stale(r: &GpuReading) -> bool {
    r.energy_stale
}

const fn counters_stale(r: &GpuReading) -> bool {
    r.counters_stale
}

const fn memory_stale(r: &GpuReading) -> bool {
    r.memory_stale
}

/// Per-GPU readings, in output order.
pub const READINGS: &[Entry<GpuReading>] = &[
    Entry {
        stale: memory_stale,
        ..GPU.entry(
            "servescope_gpu_memory_used_bytes",
            MetricType::Gauge,
            Unit::Bytes,
            "GPU framebuffer memory in use.",
            |r| r.memory_used_bytes.map(Value::Int),
        )
    },
    Entry {
        stale: memory_stale,
        ..GPU.entry(
            "servescope_gpu_memory_free_bytes",
            MetricType::Gauge,
            Unit::Bytes,
            "GPU framebuffer memory free.",
            |r| r.memory_free_bytes.map(Value::Int),
        )
    },
    Entry {
        stale: memory_stale,
        ..GPU.entry(
            "servescope_gpu_memory_reserved_bytes",
            MetricType::Gauge,
            Unit::Bytes,
            "GPU framebuffer memory reserved by the driver.",
            |r| r.memory_reserved_bytes.map(Value::Int),
        )
    },
    GPU.entry(
        "servescope_gpu_utilization_ratio",
        MetricType::Gauge,
        Unit::Ratio,
        "Fraction of the last NVML sample period during which a kernel ran on the GPU (0-1).",
        |r| r.util_gpu_pct.map(pct_ratio),
    ),
    GPU.entry(
        "servescope_gpu_memory_utilization_ratio",
        MetricType::Gauge,
        Unit::Ratio,
        "Fraction of the last NVML sample period during which device memory was read or written (0-1).",
        |r| r.util_memory_pct.map(pct_ratio),
    ),
    GPU.entry(
        "servescope_gpu_sm_clock_hertz",
        MetricType::Gauge,
        Unit::Hertz,
        "Current SM clock.",
        |r| r.sm_clock_mhz.map(|m| Value::Int(u64::from(m) * 1_000_000)),
    ),
    GPU.entry(
        "servescope_gpu_memory_clock_hertz",
        MetricType::Gauge,
        Unit::Hertz,
        "Current memory clock.",
        |r| r.mem_clock_mhz.map(|m| Value::Int(u64::from(m) * 1_000_000)),
    ),
    GPU.entry(
        "servescope_gpu_power_watts",
        MetricType::Gauge,
        Unit::Watts,
        "Current GPU power draw.",
        |r| r.power_mw.map(|p| milli(u64::from(p))),
    ),
    Entry {
        stale: energy_stale,
        ..GPU.entry(
            "servescope_gpu_energy_joules_total",
            MetricType::Counter,
            Unit::Joules,
            "Energy consumed by the GPU since the driver was loaded.",
            |r| r.energy_mj.map(milli),
        )
    },
    GPU.entry(
        "servescope_gpu_temperature_celsius",
        MetricType::Gauge,
        Unit::Celsius,
        "GPU core temperature.",
        |r| r.temperature_c.map(|t| Value::Int(u64::from(t))),
    ),
    GPU.entry(
        "servescope_gpu_throttle_reasons",
        MetricType::Gauge,
        Unit::None,
        "NVML clock event (throttle) reasons bit mask; 0 when clocks are not held back.",
        |r| r.throttle_reasons.map(Value::Int),
    ),
    Entry {
        stale: counters_stale,
        ..GPU.entry(
            "servescope_gpu_pcie_transmit_bytes_total",
            MetricType::Counter,
            Unit::Bytes,
            "Bytes the GPU sent over PCIe (wrap-corrected by the agent).",
            |r| r.pcie_tx_bytes.map(Value::Int),
        )
    },
    Entry {
        stale: counters_stale,
        ..GPU.entry(
            "servescope_gpu_pcie_receive_bytes_total",
            MetricType::Counter,
            Unit::Bytes,
            "Bytes the GPU received over PCIe (wrap-corrected by the agent).",
            |r| r.pcie_rx_bytes.map(Value::Int),
        )
    },
    Entry {
        stale: counters_stale,
        ..GPU.entry(
            "servescope_gpu_nvlink_transmit_bytes_total",
            MetricType::Counter,
            Unit::Bytes,
            "Bytes the GPU sent over NVLink, summed over active links.",
            |r| r.nvlink_tx_bytes.map(Value::Int),
        )
    },
    Entry {
        stale: counters_stale,
        ..GPU.entry(
            "servescope_gpu_nvlink_receive_bytes_total",
            MetricType::Counter,
            Unit::Bytes,
            "Bytes the GPU received over NVLink, summed over active links.",
            |r| r.nvlink_rx_bytes.map(Value::Int),
        )
    },
    GPU.entry(
        "servescope_gpu_ecc_corrected_errors_total",
        MetricType::Counter,
        Unit::None,
        "Corrected (single-bit) ECC errors.",
        |r| r.ecc_corrected_total.map(Value::Int),
    ),
    GPU.entry(
        "servescope_gpu_ecc_uncorrected_errors_total",
        MetricType::Counter,
        Unit::None,
        "Uncorrected (double-bit) ECC errors.",
        |r| r.ecc_uncorrected_total.map(Value::Int),
    ),
    GPU.entry(
        "servescope_gpu_correctable_remapped_rows",
        MetricType::Gauge,
        Unit::None,
        "Memory rows remapped because of correctable errors.",
        |r| r.remapped_rows_correctable.map(|v| Value::Int(u64::from(v))),
    ),
    GPU.entry(
        "servescope_gpu_uncorrectable_remapped_rows",
        MetricType::Gauge,
        Unit::None,
        "Memory rows remapped because of uncorrectable errors.",
        |r| r.remapped_rows_uncorrectable.map(|v| Value::Int(u64::from(v))),
    ),
    GPU.entry(
        "servescope_gpu_remapped_rows_pending",
        MetricType::Gauge,
        Unit::None,
        "1 if a row remapping is pending (takes effect at the next GPU reset).",
        |r| r.remapped_rows_pending.map(b01),
    ),
    GPU.entry(
        "servescope_gpu_remapped_rows_failure",
        MetricType::Gauge,
        Unit::None,
        "1 if a row remapping failed.",
        |r| r.remapped_rows_failure.map(b01),
    ),
    GPU.entry(
        "servescope_gpu_pcie_link_generation",
        MetricType::Gauge,
        Unit::None,
        "PCIe generation the link is trained at now (idle GPUs train down).",
        |r| r.pcie_link_gen.map(|v| Value::Int(u64::from(v))),
    ),
    GPU.entry(
        "servescope_gpu_pcie_link_generation_max",
        MetricType::Gauge,
        Unit::None,
        "Highest PCIe generation the GPU and its slot support.",
        |r| r.pcie_link_gen_max.map(|v| Value::Int(u64::from(v))),
    ),
    GPU.entry(
        "servescope_gpu_pcie_link_width",
        MetricType::Gauge,
        Unit::None,
        "PCIe lanes the link is trained at now.",
        |r| r.pcie_link_width.map(|v| Value::Int(u64::from(v))),
    ),
    GPU.entry(
        "servescope_gpu_pcie_link_width_max",
        MetricType::Gauge,
        Unit::None,
        "Most PCIe lanes the GPU and its slot support.",
        |r| r.pcie_link_width_max.map(|v| Value::Int(u64::from(v))),
    ),
    GPU.entry(
        "servescope_gpu_pcie_replays_total",
        MetricType::Counter,
        Unit::None,
        "PCIe replays (link-level retransmissions) since the driver loaded.",
        |r| r.pcie_replay_count.map(Value::Int),
    ),
];

/// `servescope_gpu_process_memory_used_bytes{gpu,uuid,pid,process}`: one series
/// per process (high cardinality; the agent can leave it out).
pub const PROCESS_MEMORY: Entry<GpuProcess> = Entry {
    def: Def {
        name: "servescope_gpu_process_memory_used_bytes",
        help: "GPU memory used by each compute process (one series per pid: high cardinality).",
        kind: MetricType::Gauge,
        unit: Unit::Bytes,
        labels: &["gpu", "uuid", "pid", "process"],
    },
    read: |p| Some(Value::Int(p.used_bytes)),
    stale: never,
};

pub(super) fn sampled() -> impl Iterator<Item = &'static Def> {
    READINGS.iter().map(|e| &e.def).chain([&PROCESS_MEMORY.def])
}
