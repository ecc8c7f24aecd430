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
//! Every family is declared once in the metric catalogue
//! ([`servescope_proto::catalog`]: name, help, type, unit, labels and how to read the
//! value), which the coordinator's export reads too. RDMA counters are families by
//! template: the agent passes on whatever sysfs offers, so there is one family per
//! counter name ([`catalog::rdma::PORT_COUNTER`], [`catalog::rdma::DEVICE_COUNTER`]).
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

mod agent;
#[cfg(any(test, feature = "test-support"))]
mod example;
mod gpu;
mod host;
mod latest;
mod rdma;
mod writer;

pub use servescope_proto::catalog;
pub use servescope_proto::catalog::{Def, MetricType, Unit};
use servescope_proto::v1::{Inventory, Sample};

#[cfg(any(test, feature = "test-support"))]
pub use example::{example_node, example_output};

use agent::render_agent;
use gpu::render_gpus;
use host::{render_host, render_host_info};
use latest::Latest;
use rdma::render_rdma;

/// `Content-Type` of the text [`render`] produces.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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

#[cfg(test)]
mod tests;
