//! Prometheus text exposition (format 0.0.4) of the agent's latest samples, for the
//! `/metrics` HTTP port.
//!
//! [`render`] is pure: it turns an [`Inventory`], the latest sample of each kind and
//! the XID counts into text, so it is tested on hand-built values and checked with
//! `promtool check metrics` (see `tests/promtool.rs`).
//!
//! Conventions (node_exporter / dcgm-exporter style, see the Prometheus naming guide):
//! - every name starts with `servescope_`, values are in base units (bytes, seconds,
//!   hertz, watts, joules, celsius, ratio 0–1);
//! - counters end in `_total` and their `# TYPE` line names them with the suffix, as
//!   node_exporter does (`# TYPE node_network_receive_bytes_total counter`), which is
//!   what the 0.0.4 parser and `promtool check metrics` expect;
//! - a value the agent could not read (`None`, non-finite float) is left out: no `NaN`;
//! - a family is written only when it has at least one sample, once, contiguously,
//!   with `# HELP` then `# TYPE`, and never repeats a label set.
//!
//! Every fixed family is declared once in the [`Metric`] table (name, help, type,
//! unit). RDMA counters are the exception: the agent passes on whatever sysfs offers,
//! so there is one family per counter name, named by the templates
//! [`RDMA_PORT_COUNTER`] and [`RDMA_DEVICE_COUNTER`].
//!
//! Cardinality: `servescope_gpu_process_memory_used_bytes` carries `pid` and
//! `process` labels, so every new process makes a new series (a serving node that
//! restarts its engine often leaves many short stale series in the TSDB). Turn it off
//! with [`RenderOptions::per_process`] or drop it in `metric_relabel_configs` where
//! that matters; everything else is bounded by the hardware (GPUs, cores, interfaces,
//! RDMA ports, counter names) or, for `servescope_gpu_xid_errors_total`, by the set of
//! XID codes seen.
//!
//! Rendering writes into one `String` (use [`render_into`] to reuse it across scrapes);
//! label values are escaped while writing and RDMA names are sanitized while writing,
//! so the only other allocations are two small vectors per scrape.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use servescope_proto::v1::{
    sample, FieldError, GpuInfo, GpuReading, HostSample, Inventory, NetInterfaceReading,
    RdmaDeviceReading, RdmaSample, Sample, SampleKind, SelfSample,
};

/// `Content-Type` of the text [`render`] produces.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus metric type (only the two the agent uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic; the name ends in `_total`.
    Counter,
    /// A value that can go up and down.
    Gauge,
}

impl MetricType {
    /// The word used on the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// Base unit of a family; its suffix is part of the name (before `_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    BytesPerSecond,
    Seconds,
    Ratio,
    Hertz,
    Watts,
    Joules,
    Celsius,
    /// A count, a bit mask, a 0/1 state or an `_info` pseudo-metric.
    None,
}

impl Unit {
    /// The name suffix this unit requires (`None` for unitless families).
    pub const fn suffix(self) -> Option<&'static str> {
        match self {
            Unit::Bytes => Some("_bytes"),
            Unit::BytesPerSecond => Some("_bytes_per_second"),
            Unit::Seconds => Some("_seconds"),
            Unit::Ratio => Some("_ratio"),
            Unit::Hertz => Some("_hertz"),
            Unit::Watts => Some("_watts"),
            Unit::Joules => Some("_joules"),
            Unit::Celsius => Some("_celsius"),
            Unit::None => None,
        }
    }
}

/// One metric family: what the `# HELP` and `# TYPE` lines say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    pub unit: Unit,
}

macro_rules! metric_table {
    ($( $id:ident = $name:literal, $kind:ident, $unit:ident, $help:literal; )+) => {
        /// Every fixed metric family the agent exposes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Metric {
            $( $id, )+
        }

        impl Metric {
            /// All fixed families, in table order.
            pub const ALL: &'static [Metric] = &[ $( Metric::$id, )+ ];

            /// Name, help, type and unit of this family.
            pub const fn def(self) -> &'static MetricDef {
                match self {
                    $( Metric::$id => &MetricDef {
                        name: $name,
                        help: $help,
                        kind: MetricType::$kind,
                        unit: Unit::$unit,
                    }, )+
                }
            }
        }
    };
}

metric_table! {
    // Agent.
    AgentBuildInfo = "servescope_agent_build_info", Gauge, None,
        "Agent build information; always 1.";
    AgentCpuSecondsTotal = "servescope_agent_cpu_seconds_total", Counter, Seconds,
        "User plus system CPU time consumed by the agent process.";
    AgentResidentMemoryBytes = "servescope_agent_resident_memory_bytes", Gauge, Bytes,
        "Resident set size of the agent process.";
    AgentRingSamples = "servescope_agent_ring_samples", Gauge, None,
        "Samples held in the agent's replay ring buffer.";
    AgentRingBytes = "servescope_agent_ring_bytes", Gauge, Bytes,
        "Estimated memory held by the agent's replay ring buffer.";
    AgentStreamsActive = "servescope_agent_streams_active", Gauge, None,
        "gRPC telemetry streams currently open.";
    AgentCollectorCallSeconds = "servescope_agent_collector_call_seconds", Gauge, Seconds,
        "Mean and max duration of each collector call since the previous self sample.";
    AgentCollectorCalls = "servescope_agent_collector_calls", Gauge, None,
        "Number of calls of each collector call since the previous self sample.";
    SampleTimestampSeconds = "servescope_sample_timestamp_seconds", Gauge, Seconds,
        "Agent host time (Unix epoch) of the latest sample of each kind.";
    SampleCollectSeconds = "servescope_sample_collect_seconds", Gauge, Seconds,
        "Time the collector took to produce the latest sample of each kind.";
    SampleFieldErrors = "servescope_sample_field_errors", Gauge, None,
        "Values that could not be read in the latest sample of each kind.";
    // GPU inventory.
    NvmlUp = "servescope_nvml_up", Gauge, None,
        "1 if NVML was loaded and initialised, 0 otherwise.";
    GpuDriverInfo = "servescope_gpu_driver_info", Gauge, None,
        "NVIDIA driver, CUDA driver and NVML versions; always 1.";
    GpuInfo = "servescope_gpu_info", Gauge, None,
        "GPU identity and placement; always 1.";
    GpuMemoryTotalBytes = "servescope_gpu_memory_total_bytes", Gauge, Bytes,
        "Total GPU framebuffer memory.";
    GpuNvlinkLinks = "servescope_gpu_nvlink_links", Gauge, None,
        "Active NVLink links of the GPU.";
    // GPU readings.
    GpuMemoryUsedBytes = "servescope_gpu_memory_used_bytes", Gauge, Bytes,
        "GPU framebuffer memory in use.";
    GpuMemoryFreeBytes = "servescope_gpu_memory_free_bytes", Gauge, Bytes,
        "GPU framebuffer memory free.";
    GpuMemoryReservedBytes = "servescope_gpu_memory_reserved_bytes", Gauge, Bytes,
        "GPU framebuffer memory reserved by the driver.";
    GpuUtilizationRatio = "servescope_gpu_utilization_ratio", Gauge, Ratio,
        "Fraction of the last NVML sample period during which a kernel ran on the GPU (0-1).";
    GpuMemoryUtilizationRatio = "servescope_gpu_memory_utilization_ratio", Gauge, Ratio,
        "Fraction of the last NVML sample period during which device memory was read or written (0-1).";
    GpuSmClockHertz = "servescope_gpu_sm_clock_hertz", Gauge, Hertz,
        "Current SM clock.";
    GpuMemoryClockHertz = "servescope_gpu_memory_clock_hertz", Gauge, Hertz,
        "Current memory clock.";
    GpuPowerWatts = "servescope_gpu_power_watts", Gauge, Watts,
        "Current GPU power draw.";
    GpuEnergyJoulesTotal = "servescope_gpu_energy_joules_total", Counter, Joules,
        "Energy consumed by the GPU since the driver was loaded.";
    GpuTemperatureCelsius = "servescope_gpu_temperature_celsius", Gauge, Celsius,
        "GPU core temperature.";
    GpuThrottleReasons = "servescope_gpu_throttle_reasons", Gauge, None,
        "NVML clock event (throttle) reasons bit mask; 0 when clocks are not held back.";
    GpuPcieTransmitBytesTotal = "servescope_gpu_pcie_transmit_bytes_total", Counter, Bytes,
        "Bytes the GPU sent over PCIe (wrap-corrected by the agent).";
    GpuPcieReceiveBytesTotal = "servescope_gpu_pcie_receive_bytes_total", Counter, Bytes,
        "Bytes the GPU received over PCIe (wrap-corrected by the agent).";
    GpuNvlinkTransmitBytesTotal = "servescope_gpu_nvlink_transmit_bytes_total", Counter, Bytes,
        "Bytes the GPU sent over NVLink, summed over active links.";
    GpuNvlinkReceiveBytesTotal = "servescope_gpu_nvlink_receive_bytes_total", Counter, Bytes,
        "Bytes the GPU received over NVLink, summed over active links.";
    GpuEccCorrectedErrorsTotal = "servescope_gpu_ecc_corrected_errors_total", Counter, None,
        "Corrected (single-bit) ECC errors.";
    GpuEccUncorrectedErrorsTotal = "servescope_gpu_ecc_uncorrected_errors_total", Counter, None,
        "Uncorrected (double-bit) ECC errors.";
    GpuCorrectableRemappedRows = "servescope_gpu_correctable_remapped_rows", Gauge, None,
        "Memory rows remapped because of correctable errors.";
    GpuUncorrectableRemappedRows = "servescope_gpu_uncorrectable_remapped_rows", Gauge, None,
        "Memory rows remapped because of uncorrectable errors.";
    GpuRemappedRowsPending = "servescope_gpu_remapped_rows_pending", Gauge, None,
        "1 if a row remapping is pending (takes effect at the next GPU reset).";
    GpuRemappedRowsFailure = "servescope_gpu_remapped_rows_failure", Gauge, None,
        "1 if a row remapping failed.";
    GpuProcessMemoryUsedBytes = "servescope_gpu_process_memory_used_bytes", Gauge, Bytes,
        "GPU memory used by each compute process (one series per pid: high cardinality).";
    GpuXidErrorsTotal = "servescope_gpu_xid_errors_total", Counter, None,
        "XID errors reported for the GPU since the agent started, by XID code.";
    // Host.
    HostInfo = "servescope_host_info", Gauge, None,
        "Host name, OS and kernel; always 1.";
    HostCpuUtilizationRatio = "servescope_host_cpu_utilization_ratio", Gauge, Ratio,
        "CPU utilization over all cores since the previous host sample (0-1).";
    HostCpuCoreUtilizationRatio = "servescope_host_cpu_core_utilization_ratio", Gauge, Ratio,
        "CPU utilization of each core since the previous host sample (0-1).";
    HostMemoryTotalBytes = "servescope_host_memory_total_bytes", Gauge, Bytes,
        "Total host memory.";
    HostMemoryUsedBytes = "servescope_host_memory_used_bytes", Gauge, Bytes,
        "Host memory in use.";
    HostMemoryAvailableBytes = "servescope_host_memory_available_bytes", Gauge, Bytes,
        "Host memory available for new allocations without swapping.";
    HostSwapUsedBytes = "servescope_host_swap_used_bytes", Gauge, Bytes,
        "Swap space in use.";
    HostLoad1 = "servescope_host_load1", Gauge, None,
        "1-minute load average.";
    HostLoad5 = "servescope_host_load5", Gauge, None,
        "5-minute load average.";
    HostLoad15 = "servescope_host_load15", Gauge, None,
        "15-minute load average.";
    HostNetworkReceiveBytesTotal = "servescope_host_network_receive_bytes_total", Counter, Bytes,
        "Bytes received by the network interface (RDMA offload traffic is not included).";
    HostNetworkTransmitBytesTotal = "servescope_host_network_transmit_bytes_total", Counter, Bytes,
        "Bytes transmitted by the network interface (RDMA offload traffic is not included).";
    HostNetworkReceivePacketsTotal = "servescope_host_network_receive_packets_total", Counter, None,
        "Packets received by the network interface.";
    HostNetworkTransmitPacketsTotal = "servescope_host_network_transmit_packets_total", Counter, None,
        "Packets transmitted by the network interface.";
    HostNetworkReceiveErrorsTotal = "servescope_host_network_receive_errors_total", Counter, None,
        "Receive errors of the network interface.";
    HostNetworkTransmitErrorsTotal = "servescope_host_network_transmit_errors_total", Counter, None,
        "Transmit errors of the network interface.";
    HostNetworkReceiveDropsTotal = "servescope_host_network_receive_drops_total", Counter, None,
        "Received packets dropped by the network interface.";
    HostNetworkTransmitDropsTotal = "servescope_host_network_transmit_drops_total", Counter, None,
        "Transmitted packets dropped by the network interface.";
    HostNetworkUp = "servescope_host_network_up", Gauge, None,
        "1 if the interface operstate is up and its carrier is not down.";
    // RDMA.
    RdmaDeviceInfo = "servescope_rdma_device_info", Gauge, None,
        "RDMA device driver and placement; always 1.";
    RdmaPortActive = "servescope_rdma_port_active", Gauge, None,
        "1 if the RDMA port state is ACTIVE (EFA always says ACTIVE: see servescope_rdma_netdev_up).";
    RdmaPortRateBytesPerSecond = "servescope_rdma_port_rate_bytes_per_second", Gauge, BytesPerSecond,
        "Link rate of the RDMA port as reported by sysfs.";
    RdmaNetdevUp = "servescope_rdma_netdev_up", Gauge, None,
        "1 if the RDMA port's network interface has operstate up and carrier not down.";
}

/// Template for per-port RDMA counter families: `hw_counters/<c>` becomes
/// `servescope_rdma_port_<c>_total`, `counters/<c>` becomes
/// `servescope_rdma_port_counters_<c>_total`, labels `device`, `port`.
pub const RDMA_PORT_COUNTER: MetricDef = MetricDef {
    name: "servescope_rdma_port_<counter>_total",
    help: "RDMA port counter <counter> read from sysfs (cumulative, driver units).",
    kind: MetricType::Counter,
    unit: Unit::None,
};

/// Template for device-level RDMA counter families: `servescope_rdma_device_<c>_total`,
/// label `device`.
pub const RDMA_DEVICE_COUNTER: MetricDef = MetricDef {
    name: "servescope_rdma_device_<counter>_total",
    help: "RDMA device counter <counter> read from sysfs (cumulative, driver units).",
    kind: MetricType::Counter,
    unit: Unit::None,
};

/// sysfs `hw_counters/lifespan` is the driver's counter cache lifetime in ms, a
/// setting rather than a counter: it is not exported.
const RDMA_NOT_COUNTERS: &[&str] = &["lifespan"];

/// Knobs for [`render_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Emit `servescope_gpu_process_memory_used_bytes` (one series per GPU process).
    pub per_process: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { per_process: true }
    }
}

/// Renders the inventory, the latest sample of each kind in `samples` (the one with
/// the greatest `t_ns`; events are ignored) and the XID counts
/// (`(gpu index, xid, count)`) as Prometheus text format 0.0.4.
pub fn render(inv: &Inventory, samples: &[&Sample], xid_counts: &[(u32, u64, u64)]) -> String {
    let mut out = String::new();
    render_into(
        &mut out,
        inv,
        samples,
        xid_counts,
        &RenderOptions::default(),
    );
    out
}

/// [`render`] with options.
pub fn render_with(
    inv: &Inventory,
    samples: &[&Sample],
    xid_counts: &[(u32, u64, u64)],
    opts: &RenderOptions,
) -> String {
    let mut out = String::new();
    render_into(&mut out, inv, samples, xid_counts, opts);
    out
}

/// Clears `out` and renders into it, so a caller can keep one buffer across scrapes.
pub fn render_into(
    out: &mut String,
    inv: &Inventory,
    samples: &[&Sample],
    xid_counts: &[(u32, u64, u64)],
    opts: &RenderOptions,
) {
    out.clear();
    let latest = Latest::pick(samples);
    // A guess at the size (≈80 kB for 8 GPUs, 192 cores, 5 RDMA ports) so the
    // first render grows the buffer once or twice, not a dozen times.
    let rdma_ports: usize = inv.rdma_devices.iter().map(|d| d.ports.len()).sum();
    let cores = latest.host.map_or(0, |h| h.cpu_per_core_pct.len());
    out.reserve(8192 + inv.gpus.len() * 5120 + cores * 64 + rdma_ports * 3072);

    render_agent(out, inv, &latest);
    render_gpus(out, inv, latest.gpu_readings(), xid_counts, opts);
    if let Some(h) = latest.host {
        render_host(out, inv, h);
    } else {
        render_host_info(out, inv);
    }
    render_rdma(out, inv, latest.rdma);
}

// ---------------------------------------------------------------------------------
// Selection of the latest sample of each kind.

/// The kinds whose latest sample is exposed (events are not), in label order.
const EXPOSED: [SampleKind; 4] = [
    SampleKind::Gpu,
    SampleKind::Host,
    SampleKind::Rdma,
    SampleKind::Self_,
];

#[derive(Default)]
struct Latest<'a> {
    /// Indexed by `SampleKind as usize`.
    by_kind: [Option<&'a Sample>; SampleKind::ALL.len() + 1],
    host: Option<&'a HostSample>,
    rdma: Option<&'a RdmaSample>,
    self_stats: Option<&'a SelfSample>,
    gpu: Option<&'a [GpuReading]>,
}

impl<'a> Latest<'a> {
    fn pick(samples: &[&'a Sample]) -> Self {
        let mut l = Latest::default();
        for &s in samples {
            let k = s.kind();
            if !EXPOSED.contains(&k) {
                continue;
            }
            let slot = &mut l.by_kind[k as usize];
            // Greatest t_ns wins; on a tie the later one in the slice.
            if slot.is_none_or(|prev| s.t_ns >= prev.t_ns) {
                *slot = Some(s);
            }
        }
        for s in l.by_kind.into_iter().flatten() {
            match &s.data {
                Some(sample::Data::Gpu(g)) => l.gpu = Some(&g.gpus),
                Some(sample::Data::Host(h)) => l.host = Some(h),
                Some(sample::Data::Rdma(r)) => l.rdma = Some(r),
                Some(sample::Data::SelfStats(x)) => l.self_stats = Some(x),
                _ => {}
            }
        }
        l
    }

    fn gpu_readings(&self) -> &'a [GpuReading] {
        self.gpu.unwrap_or(&[])
    }

    fn field_errors(&self, k: SampleKind) -> usize {
        match k {
            SampleKind::Gpu => self.gpu_readings().iter().map(|g| g.errors.len()).sum(),
            SampleKind::Host => self.host.map_or(0, |h| h.errors.len()),
            SampleKind::Rdma => self.rdma.map_or(0, |r| {
                r.devices
                    .iter()
                    .map(|d| d.errors.len() + d.ports.iter().map(|p| p.errors.len()).sum::<usize>())
                    .sum()
            }),
            SampleKind::Self_ | SampleKind::Event | SampleKind::Unspecified => 0,
        }
    }
}

// ---------------------------------------------------------------------------------
// Low-level writer.

/// A label value.
#[derive(Clone, Copy)]
enum Lv<'a> {
    /// Escaped while written.
    S(&'a str),
    U(u64),
    /// A number or the empty string (an unknown NUMA node, for example).
    OptI(Option<i32>),
}

/// A sample value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Val {
    U(u64),
    F(f64),
    F32(f32),
}

impl Val {
    fn is_finite(self) -> bool {
        match self {
            Val::U(_) => true,
            Val::F(v) => v.is_finite(),
            Val::F32(v) => v.is_finite(),
        }
    }
}

fn b01(b: bool) -> Val {
    Val::U(u64::from(b))
}

fn pct_ratio(p: u32) -> Val {
    Val::F(f64::from(p) / 100.0)
}

fn milli(v: u64) -> Val {
    // u64 → f64 is exact up to 2^53 mJ (≈ 285 years at 1 kW).
    Val::F(v as f64 / 1000.0)
}

/// Family name: fixed, or an RDMA counter family sanitized while written.
#[derive(Clone, Copy)]
enum Name<'a> {
    Fixed(&'static str),
    Rdma(RdmaScope, &'a str),
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Name::Fixed(n) => f.write_str(n),
            Name::Rdma(scope, raw) => {
                f.write_str(scope.prefix())?;
                for c in rdma_key(raw) {
                    f.write_char(c)?;
                }
                f.write_str("_total")
            }
        }
    }
}

/// Help text; RDMA helps name the sysfs file (escaped for a HELP line).
#[derive(Clone, Copy)]
enum Help<'a> {
    Fixed(&'static str),
    Rdma(RdmaScope, &'a str),
}

impl fmt::Display for Help<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Help::Fixed(h) => f.write_str(h),
            Help::Rdma(scope, raw) => {
                f.write_str(match scope {
                    RdmaScope::Port => "RDMA port counter ",
                    RdmaScope::Device => "RDMA device counter ",
                })?;
                for c in raw.chars() {
                    match c {
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        c => f.write_char(c)?,
                    }
                }
                f.write_str(" read from sysfs (cumulative, driver units")?;
                let (_, rest) = rdma_split(raw);
                if rest == "port_xmit_data" || rest == "port_rcv_data" {
                    f.write_str("; counts 4-octet words")?;
                }
                f.write_str(").")
            }
        }
    }
}

/// Writes one family: the header goes out with its first sample, so families with no
/// value at all are left out entirely.
struct Family<'o, 'n> {
    out: &'o mut String,
    name: Name<'n>,
    help: Help<'n>,
    kind: MetricType,
    started: bool,
}

impl<'o, 'n> Family<'o, 'n> {
    fn new(out: &'o mut String, m: Metric) -> Self {
        let d = m.def();
        Family {
            out,
            name: Name::Fixed(d.name),
            help: Help::Fixed(d.help),
            kind: d.kind,
            started: false,
        }
    }

    fn rdma(out: &'o mut String, scope: RdmaScope, raw: &'n str) -> Self {
        Family {
            out,
            name: Name::Rdma(scope, raw),
            help: Help::Rdma(scope, raw),
            kind: MetricType::Counter,
            started: false,
        }
    }

    fn name(&mut self) {
        match self.name {
            Name::Fixed(n) => self.out.push_str(n),
            n => {
                let _ = write!(self.out, "{n}");
            }
        }
    }

    /// Writes `name{labels} value`; `None` and non-finite values are skipped.
    fn sample(&mut self, labels: &[(&str, Lv<'_>)], v: impl Into<Option<Val>>) {
        let Some(v) = v.into().filter(|v| v.is_finite()) else {
            return;
        };
        if !self.started {
            self.started = true;
            self.out.push_str("# HELP ");
            self.name();
            self.out.push(' ');
            let _ = write!(self.out, "{}", self.help);
            self.out.push_str("\n# TYPE ");
            self.name();
            self.out.push(' ');
            self.out.push_str(self.kind.as_str());
            self.out.push('\n');
        }
        self.name();
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, lv)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                match *lv {
                    Lv::S(s) => escape_label_value(self.out, s),
                    Lv::U(u) => {
                        let _ = write!(self.out, "{u}");
                    }
                    Lv::OptI(Some(i)) => {
                        let _ = write!(self.out, "{i}");
                    }
                    Lv::OptI(None) => {}
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        let _ = match v {
            Val::U(u) => write!(self.out, "{u}"),
            Val::F(f) => write!(self.out, "{f}"),
            Val::F32(f) => write!(self.out, "{f}"),
        };
        self.out.push('\n');
    }
}

/// Escapes a label value for the text format: backslash, double quote, line feed.
fn escape_label_value(out: &mut String, s: &str) {
    if !s.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// True if no element before `i` has the same key (keeps label sets unique; the
/// lists are short: GPUs, processes of a GPU, interfaces, devices).
fn first_of<T>(items: &[T], i: usize, same: impl Fn(&T, &T) -> bool) -> bool {
    let x = &items[i];
    !items[..i].iter().any(|y| same(y, x))
}

// ---------------------------------------------------------------------------------
// Agent.

fn render_agent(out: &mut String, inv: &Inventory, latest: &Latest<'_>) {
    Family::new(out, Metric::AgentBuildInfo)
        .sample(&[("version", Lv::S(&inv.agent_version))], Val::U(1));

    if let Some(s) = latest.self_stats {
        Family::new(out, Metric::AgentCpuSecondsTotal).sample(&[], Val::F(s.cpu_seconds_total));
        Family::new(out, Metric::AgentResidentMemoryBytes).sample(&[], Val::U(s.rss_bytes));
        Family::new(out, Metric::AgentRingSamples).sample(&[], Val::U(s.ring_samples));
        Family::new(out, Metric::AgentRingBytes).sample(&[], Val::U(s.ring_bytes_estimate));
        Family::new(out, Metric::AgentStreamsActive).sample(&[], Val::U(s.streams_active));

        let calls = &s.calls;
        let mut f = Family::new(out, Metric::AgentCollectorCallSeconds);
        for (i, c) in calls.iter().enumerate() {
            if !first_of(calls, i, |a, b| a.name == b.name) {
                continue;
            }
            let call = Lv::S(&c.name);
            f.sample(
                &[("call", call), ("stat", Lv::S("mean"))],
                ns_secs(c.mean_ns),
            );
            f.sample(&[("call", call), ("stat", Lv::S("max"))], ns_secs(c.max_ns));
        }
        let mut f = Family::new(out, Metric::AgentCollectorCalls);
        for (i, c) in calls.iter().enumerate() {
            if first_of(calls, i, |a, b| a.name == b.name) {
                f.sample(&[("call", Lv::S(&c.name))], Val::U(c.count));
            }
        }
    }

    let mut f = Family::new(out, Metric::SampleTimestampSeconds);
    for k in EXPOSED {
        if let Some(s) = latest.by_kind[k as usize] {
            f.sample(&[("kind", Lv::S(k.name()))], ns_secs(s.t_ns));
        }
    }
    let mut f = Family::new(out, Metric::SampleCollectSeconds);
    for k in EXPOSED {
        if let Some(s) = latest.by_kind[k as usize] {
            f.sample(&[("kind", Lv::S(k.name()))], ns_secs(s.collect_ns));
        }
    }
    let mut f = Family::new(out, Metric::SampleFieldErrors);
    for k in EXPOSED {
        if latest.by_kind[k as usize].is_some() {
            f.sample(
                &[("kind", Lv::S(k.name()))],
                Val::U(latest.field_errors(k) as u64),
            );
        }
    }
}

/// Nanoseconds → seconds, whole and fractional parts converted apart so an epoch
/// timestamp keeps sub-microsecond precision instead of the ~256 ns of `ns as f64`.
fn ns_secs(ns: u64) -> Val {
    Val::F((ns / 1_000_000_000) as f64 + (ns % 1_000_000_000) as f64 / 1e9)
}

// ---------------------------------------------------------------------------------
// GPU.

type GpuGetter = fn(&GpuReading) -> Option<Val>;

/// GPU reading families, in output order.
const GPU_READINGS: &[(Metric, GpuGetter)] = &[
    (Metric::GpuMemoryUsedBytes, |r| {
        r.memory_used_bytes.map(Val::U)
    }),
    (Metric::GpuMemoryFreeBytes, |r| {
        r.memory_free_bytes.map(Val::U)
    }),
    (Metric::GpuMemoryReservedBytes, |r| {
        r.memory_reserved_bytes.map(Val::U)
    }),
    (Metric::GpuUtilizationRatio, |r| {
        r.util_gpu_pct.map(pct_ratio)
    }),
    (Metric::GpuMemoryUtilizationRatio, |r| {
        r.util_memory_pct.map(pct_ratio)
    }),
    (Metric::GpuSmClockHertz, |r| {
        r.sm_clock_mhz.map(|m| Val::U(u64::from(m) * 1_000_000))
    }),
    (Metric::GpuMemoryClockHertz, |r| {
        r.mem_clock_mhz.map(|m| Val::U(u64::from(m) * 1_000_000))
    }),
    (Metric::GpuPowerWatts, |r| {
        r.power_mw.map(|p| milli(u64::from(p)))
    }),
    (Metric::GpuEnergyJoulesTotal, |r| r.energy_mj.map(milli)),
    (Metric::GpuTemperatureCelsius, |r| {
        r.temperature_c.map(|t| Val::U(u64::from(t)))
    }),
    (Metric::GpuThrottleReasons, |r| {
        r.throttle_reasons.map(Val::U)
    }),
    (Metric::GpuPcieTransmitBytesTotal, |r| {
        r.pcie_tx_bytes.map(Val::U)
    }),
    (Metric::GpuPcieReceiveBytesTotal, |r| {
        r.pcie_rx_bytes.map(Val::U)
    }),
    (Metric::GpuNvlinkTransmitBytesTotal, |r| {
        r.nvlink_tx_bytes.map(Val::U)
    }),
    (Metric::GpuNvlinkReceiveBytesTotal, |r| {
        r.nvlink_rx_bytes.map(Val::U)
    }),
    (Metric::GpuEccCorrectedErrorsTotal, |r| {
        r.ecc_corrected_total.map(Val::U)
    }),
    (Metric::GpuEccUncorrectedErrorsTotal, |r| {
        r.ecc_uncorrected_total.map(Val::U)
    }),
    (Metric::GpuCorrectableRemappedRows, |r| {
        r.remapped_rows_correctable.map(|v| Val::U(u64::from(v)))
    }),
    (Metric::GpuUncorrectableRemappedRows, |r| {
        r.remapped_rows_uncorrectable.map(|v| Val::U(u64::from(v)))
    }),
    (Metric::GpuRemappedRowsPending, |r| {
        r.remapped_rows_pending.map(b01)
    }),
    (Metric::GpuRemappedRowsFailure, |r| {
        r.remapped_rows_failure.map(b01)
    }),
];

/// The identity labels every per-GPU series carries (dcgm-exporter style).
#[derive(Clone, Copy)]
struct GpuIds<'a> {
    index: u32,
    uuid: &'a str,
    pci_bus_id: &'a str,
    name: &'a str,
}

impl<'a> GpuIds<'a> {
    fn lookup(inv: &'a Inventory, index: u32) -> Self {
        match inv.gpus.iter().find(|g| g.index == index) {
            Some(g) => GpuIds::of(g),
            None => GpuIds {
                index,
                uuid: "",
                pci_bus_id: "",
                name: "",
            },
        }
    }

    fn of(g: &'a GpuInfo) -> Self {
        GpuIds {
            index: g.index,
            uuid: &g.uuid,
            pci_bus_id: &g.pci_bus_id,
            name: &g.name,
        }
    }

    fn labels(&self) -> [(&'static str, Lv<'a>); 4] {
        [
            ("gpu", Lv::U(u64::from(self.index))),
            ("uuid", Lv::S(self.uuid)),
            ("pci_bus_id", Lv::S(self.pci_bus_id)),
            ("name", Lv::S(self.name)),
        ]
    }
}

fn render_gpus(
    out: &mut String,
    inv: &Inventory,
    readings: &[GpuReading],
    xid_counts: &[(u32, u64, u64)],
    opts: &RenderOptions,
) {
    let nvml = inv.gpu.as_ref().is_some_and(|a| a.available);
    Family::new(out, Metric::NvmlUp).sample(&[], b01(nvml));
    if nvml {
        Family::new(out, Metric::GpuDriverInfo).sample(
            &[
                ("driver_version", Lv::S(&inv.driver_version)),
                ("cuda_driver_version", Lv::S(&inv.cuda_driver_version)),
                ("nvml_version", Lv::S(&inv.nvml_version)),
            ],
            Val::U(1),
        );
    }

    let gpus = &inv.gpus;
    let unique_gpu = |i: usize| first_of(gpus, i, |a, b| a.index == b.index);
    let mut f = Family::new(out, Metric::GpuInfo);
    for (_, g) in gpus.iter().enumerate().filter(|(i, _)| unique_gpu(*i)) {
        f.sample(
            &[
                ("gpu", Lv::U(u64::from(g.index))),
                ("uuid", Lv::S(&g.uuid)),
                ("name", Lv::S(&g.name)),
                ("pci_bus_id", Lv::S(&g.pci_bus_id)),
                ("numa_node", Lv::OptI(g.numa_node)),
            ],
            Val::U(1),
        );
    }
    let mut f = Family::new(out, Metric::GpuMemoryTotalBytes);
    for (_, g) in gpus.iter().enumerate().filter(|(i, _)| unique_gpu(*i)) {
        f.sample(&GpuIds::of(g).labels(), Val::U(g.memory_total_bytes));
    }
    let mut f = Family::new(out, Metric::GpuNvlinkLinks);
    for (_, g) in gpus.iter().enumerate().filter(|(i, _)| unique_gpu(*i)) {
        f.sample(&GpuIds::of(g).labels(), Val::U(u64::from(g.nvlink_links)));
    }

    let unique_reading = |i: usize| first_of(readings, i, |a, b| a.index == b.index);
    for &(m, get) in GPU_READINGS {
        let mut f = Family::new(out, m);
        for (i, r) in readings.iter().enumerate() {
            if let Some(v) = get(r) {
                if unique_reading(i) {
                    f.sample(&GpuIds::lookup(inv, r.index).labels(), v);
                }
            }
        }
    }

    if opts.per_process {
        let mut f = Family::new(out, Metric::GpuProcessMemoryUsedBytes);
        for (i, r) in readings.iter().enumerate() {
            if r.processes.is_empty() || !unique_reading(i) {
                continue;
            }
            let ids = GpuIds::lookup(inv, r.index);
            for (j, p) in r.processes.iter().enumerate() {
                if first_of(&r.processes, j, |a, b| a.pid == b.pid) {
                    f.sample(
                        &[
                            ("gpu", Lv::U(u64::from(r.index))),
                            ("uuid", Lv::S(ids.uuid)),
                            ("pid", Lv::U(u64::from(p.pid))),
                            ("process", Lv::S(&p.name)),
                        ],
                        Val::U(p.used_bytes),
                    );
                }
            }
        }
    }

    let mut f = Family::new(out, Metric::GpuXidErrorsTotal);
    for (i, &(gpu, xid, count)) in xid_counts.iter().enumerate() {
        if first_of(xid_counts, i, |a, b| (a.0, a.1) == (b.0, b.1)) {
            f.sample(
                &[
                    ("gpu", Lv::U(u64::from(gpu))),
                    ("uuid", Lv::S(GpuIds::lookup(inv, gpu).uuid)),
                    ("xid", Lv::U(xid)),
                ],
                Val::U(count),
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Host.

type NetGetter = fn(&NetInterfaceReading) -> u64;

/// Network interface counter families, in output order.
const NET_COUNTERS: &[(Metric, NetGetter)] = &[
    (Metric::HostNetworkReceiveBytesTotal, |n| n.rx_bytes),
    (Metric::HostNetworkTransmitBytesTotal, |n| n.tx_bytes),
    (Metric::HostNetworkReceivePacketsTotal, |n| n.rx_packets),
    (Metric::HostNetworkTransmitPacketsTotal, |n| n.tx_packets),
    (Metric::HostNetworkReceiveErrorsTotal, |n| n.rx_errors),
    (Metric::HostNetworkTransmitErrorsTotal, |n| n.tx_errors),
    (Metric::HostNetworkReceiveDropsTotal, |n| n.rx_dropped),
    (Metric::HostNetworkTransmitDropsTotal, |n| n.tx_dropped),
];

/// operstate "up" and carrier not known to be down.
fn link_up(operstate: &str, carrier: Option<bool>) -> bool {
    operstate.eq_ignore_ascii_case("up") && carrier != Some(false)
}

fn render_host_info(out: &mut String, inv: &Inventory) {
    let (os, kernel) = inv
        .host
        .as_ref()
        .map_or(("", ""), |h| (h.os.as_str(), h.kernel.as_str()));
    Family::new(out, Metric::HostInfo).sample(
        &[
            ("hostname", Lv::S(&inv.hostname)),
            ("os", Lv::S(os)),
            ("kernel", Lv::S(kernel)),
        ],
        Val::U(1),
    );
}

fn render_host(out: &mut String, inv: &Inventory, h: &HostSample) {
    render_host_info(out, inv);
    let ratio = |p: f32| Val::F32(p / 100.0);
    Family::new(out, Metric::HostCpuUtilizationRatio).sample(&[], ratio(h.cpu_total_pct));
    let mut f = Family::new(out, Metric::HostCpuCoreUtilizationRatio);
    for (cpu, &p) in h.cpu_per_core_pct.iter().enumerate() {
        f.sample(&[("cpu", Lv::U(cpu as u64))], ratio(p));
    }
    Family::new(out, Metric::HostMemoryTotalBytes).sample(&[], Val::U(h.memory_total_bytes));
    Family::new(out, Metric::HostMemoryUsedBytes).sample(&[], Val::U(h.memory_used_bytes));
    Family::new(out, Metric::HostMemoryAvailableBytes)
        .sample(&[], Val::U(h.memory_available_bytes));
    Family::new(out, Metric::HostSwapUsedBytes).sample(&[], Val::U(h.swap_used_bytes));
    Family::new(out, Metric::HostLoad1).sample(&[], Val::F(h.load1));
    Family::new(out, Metric::HostLoad5).sample(&[], Val::F(h.load5));
    Family::new(out, Metric::HostLoad15).sample(&[], Val::F(h.load15));

    let net = &h.net;
    let unique = |i: usize| first_of(net, i, |a, b| a.name == b.name);
    for &(m, get) in NET_COUNTERS {
        let mut f = Family::new(out, m);
        for (i, n) in net.iter().enumerate() {
            if unique(i) {
                f.sample(&[("interface", Lv::S(&n.name))], Val::U(get(n)));
            }
        }
    }
    let mut f = Family::new(out, Metric::HostNetworkUp);
    for (i, n) in net.iter().enumerate() {
        if unique(i) {
            f.sample(
                &[("interface", Lv::S(&n.name))],
                b01(link_up(&n.operstate, n.carrier)),
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// RDMA.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RdmaScope {
    Port,
    Device,
}

impl RdmaScope {
    fn prefix(self) -> &'static str {
        match self {
            RdmaScope::Port => "servescope_rdma_port_",
            RdmaScope::Device => "servescope_rdma_device_",
        }
    }
}

/// Splits a sysfs counter name into the family-name part that marks its directory
/// (`hw_counters/` adds nothing, `counters/` adds `counters_`) and the rest.
fn rdma_split(raw: &str) -> (&'static str, &str) {
    if let Some(rest) = raw.strip_prefix("hw_counters/") {
        ("", rest)
    } else if let Some(rest) = raw.strip_prefix("counters/") {
        ("counters_", rest)
    } else {
        ("", raw)
    }
}

/// The family-name characters for a counter: lower case `[a-z0-9_]`, anything else
/// becomes `_`.
fn rdma_key(raw: &str) -> impl Iterator<Item = char> + Clone + '_ {
    let (pre, rest) = rdma_split(raw);
    pre.chars().chain(rest.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        }
    }))
}

fn rdma_key_cmp(a: &str, b: &str) -> Ordering {
    rdma_key(a).cmp(rdma_key(b))
}

fn rdma_exported(raw: &str) -> bool {
    let (_, rest) = rdma_split(raw);
    !rest.is_empty() && !RDMA_NOT_COUNTERS.contains(&rest)
}

/// A counter value unless the collector listed it as unreadable (it reads 0 then,
/// which would look like a counter reset). The RDMA collector names such errors
/// `<dev>/<port>/<counter name>` and `<dev>/hw_counters/<name>`: an error field
/// that is the name or ends in `/<name>` matches.
fn rdma_value(names: &[String], values: &[u64], errors: &[FieldError], i: usize) -> Option<u64> {
    let v = *values.get(i)?;
    (!crate::rdma::counter_failed(errors, names.get(i)?)).then_some(v)
}

/// Distinct counter names in family order, one per family (names that sanitize to
/// the same family collapse onto the first).
fn rdma_families<'a>(names: impl Iterator<Item = &'a String>, count: usize) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::with_capacity(count);
    v.extend(names.map(String::as_str).filter(|n| rdma_exported(n)));
    v.sort_unstable_by(|a, b| rdma_key_cmp(a, b).then_with(|| a.cmp(b)));
    v.dedup_by(|a, b| rdma_key_cmp(a, b) == Ordering::Equal);
    v
}

/// Index in `names` of the counter that feeds family `fam`.
fn rdma_position(names: &[String], fam: &str) -> Option<usize> {
    names.iter().position(|n| n == fam).or_else(|| {
        names
            .iter()
            .position(|n| rdma_exported(n) && rdma_key_cmp(n, fam) == Ordering::Equal)
    })
}

/// "100 Gb/sec (4X EDR)" → bytes per second.
fn parse_rate_bytes_per_second(rate: &str) -> Option<f64> {
    let mut it = rate.split_whitespace();
    let num: f64 = it.next()?.parse().ok()?;
    let unit = it.next()?;
    let bits = match unit {
        u if u.starts_with("Tb/s") => 1e12,
        u if u.starts_with("Gb/s") => 1e9,
        u if u.starts_with("Mb/s") => 1e6,
        u if u.starts_with("Kb/s") => 1e3,
        _ => return None,
    };
    Some(num * bits / 8.0)
}

/// "4: ACTIVE" (or "ACTIVE", "5: ACTIVE_DEFER") → true.
fn port_active(state: &str) -> bool {
    let s = state.rsplit(':').next().unwrap_or("").trim();
    s.eq_ignore_ascii_case("ACTIVE") || s.eq_ignore_ascii_case("ACTIVE_DEFER")
}

fn render_rdma(out: &mut String, inv: &Inventory, rdma: Option<&RdmaSample>) {
    let devs = &inv.rdma_devices;
    let unique_dev = |i: usize| first_of(devs, i, |a, b| a.name == b.name);
    let readings: &[RdmaDeviceReading] = rdma.map_or(&[], |r| &r.devices);
    let reading_of = |dev: &str| readings.iter().find(|r| r.device == dev);

    let mut f = Family::new(out, Metric::RdmaDeviceInfo);
    for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
        f.sample(
            &[
                ("device", Lv::S(&d.name)),
                ("driver", Lv::S(&d.driver)),
                ("pci_address", Lv::S(&d.pci_address)),
                ("numa_node", Lv::OptI(d.numa_node)),
            ],
            Val::U(1),
        );
    }

    // Port state: the sample's if there is one, else the inventory's.
    let mut f = Family::new(out, Metric::RdmaPortActive);
    for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
        let reading = reading_of(&d.name);
        for (j, p) in d.ports.iter().enumerate() {
            if !first_of(&d.ports, j, |a, b| a.port == b.port) {
                continue;
            }
            let state = reading
                .and_then(|r| r.ports.iter().find(|rp| rp.port == p.port))
                .map(|rp| rp.state.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(&p.state);
            if !state.is_empty() {
                f.sample(
                    &[
                        ("device", Lv::S(&d.name)),
                        ("port", Lv::U(u64::from(p.port))),
                    ],
                    b01(port_active(state)),
                );
            }
        }
    }
    let mut f = Family::new(out, Metric::RdmaPortRateBytesPerSecond);
    for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
        for (j, p) in d.ports.iter().enumerate() {
            if first_of(&d.ports, j, |a, b| a.port == b.port) {
                f.sample(
                    &[
                        ("device", Lv::S(&d.name)),
                        ("port", Lv::U(u64::from(p.port))),
                    ],
                    parse_rate_bytes_per_second(&p.rate).map(Val::F),
                );
            }
        }
    }
    let mut f = Family::new(out, Metric::RdmaNetdevUp);
    for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
        let Some(reading) = reading_of(&d.name) else {
            continue;
        };
        for (j, p) in d.ports.iter().enumerate() {
            if p.netdev.is_empty() || !first_of(&d.ports, j, |a, b| a.port == b.port) {
                continue;
            }
            let Some(rp) = reading.ports.iter().find(|rp| rp.port == p.port) else {
                continue;
            };
            if rp.netdev_operstate.is_empty() {
                continue;
            }
            f.sample(
                &[
                    ("device", Lv::S(&d.name)),
                    ("port", Lv::U(u64::from(p.port))),
                    ("netdev", Lv::S(&p.netdev)),
                ],
                b01(link_up(&rp.netdev_operstate, rp.netdev_carrier)),
            );
        }
    }

    if readings.is_empty() {
        return;
    }

    // Port counters: one family per counter name, every (device, port) inside it.
    let ports = || devs.iter().flat_map(|d| d.ports.iter());
    let port_fams = rdma_families(
        ports().flat_map(|p| p.counter_names.iter()),
        ports().map(|p| p.counter_names.len()).sum(),
    );
    for fam in &port_fams {
        let mut f = Family::rdma(out, RdmaScope::Port, fam);
        for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
            let Some(reading) = reading_of(&d.name) else {
                continue;
            };
            for (j, p) in d.ports.iter().enumerate() {
                if !first_of(&d.ports, j, |a, b| a.port == b.port) {
                    continue;
                }
                let Some(rp) = reading.ports.iter().find(|rp| rp.port == p.port) else {
                    continue;
                };
                let Some(k) = rdma_position(&p.counter_names, fam) else {
                    continue;
                };
                f.sample(
                    &[
                        ("device", Lv::S(&d.name)),
                        ("port", Lv::U(u64::from(p.port))),
                    ],
                    rdma_value(&p.counter_names, &rp.values, &rp.errors, k).map(Val::U),
                );
            }
        }
    }

    let dev_fams = rdma_families(
        devs.iter().flat_map(|d| d.device_counter_names.iter()),
        devs.iter().map(|d| d.device_counter_names.len()).sum(),
    );
    for fam in &dev_fams {
        let mut f = Family::rdma(out, RdmaScope::Device, fam);
        for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
            let Some(reading) = reading_of(&d.name) else {
                continue;
            };
            let Some(k) = rdma_position(&d.device_counter_names, fam) else {
                continue;
            };
            f.sample(
                &[("device", Lv::S(&d.name))],
                rdma_value(&d.device_counter_names, &reading.values, &reading.errors, k)
                    .map(Val::U),
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// A representative node, for `tests/promtool.rs` and for looking at the output.

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

    const EFA_PORT: &[&str] = &[
        "tx_bytes",
        "tx_pkts",
        "rx_bytes",
        "rx_pkts",
        "rx_drops",
        "send_bytes",
        "send_wrs",
        "recv_bytes",
        "recv_wrs",
        "rdma_read_wrs",
        "rdma_read_bytes",
        "rdma_read_wr_err",
        "rdma_read_resp_bytes",
        "rdma_write_wrs",
        "rdma_write_bytes",
        "rdma_write_wr_err",
        "rdma_write_recv_bytes",
        "retrans_bytes",
        "retrans_pkts",
        "retrans_timeout_events",
        "unresponsive_remote_events",
        "impaired_remote_conn_events",
        "lifespan",
    ];
    const EFA_DEVICE: &[&str] = &[
        "submitted_cmds",
        "completed_cmds",
        "cmds_err",
        "no_completion_cmds",
        "keep_alive_rcvd",
        "alloc_pd_err",
        "create_qp_err",
        "create_cq_err",
        "reg_mr_err",
        "alloc_ucontext_err",
        "create_ah_err",
        "mmap_err",
    ];
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
                counter_names: EFA_PORT
                    .iter()
                    .map(|c| format!("hw_counters/{c}"))
                    .collect(),
            }],
            device_counter_names: EFA_DEVICE.iter().map(|c| c.to_string()).collect(),
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
                counters_stale: false,
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

#[cfg(test)]
mod tests;
