//! The NIXL part of `servescope fabric probe|matrix`: transfers shaped as block size
//! × blocks or as a model's KV transfer (`--model-config`), the Python that runs
//! NIXL on each agent, and the nixlbench-style result table.

use std::path::PathBuf;

use anyhow::Context;
use servescope_coordinator::analysis::fabric::units;
use servescope_fabric::nixl::sizing;
use servescope_proto::v1::{ProbePlanMsg, ProbeSizeResult, ProbeTransport};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct NixlFlags {
    /// NIXL probes: bytes per descriptor (a transfer is size / block-size descriptors)
    #[arg(long)]
    pub block_size: Option<String>,
    /// NIXL probes: descriptors per transfer (a list); sizes become block-size × blocks
    #[arg(long, requires = "block_size")]
    pub blocks: Option<String>,
    /// NIXL probes: a Hugging Face config.json; the transfer takes the shape vLLM's
    /// NixlConnector posts for one request (layers × K/V × KV blocks descriptors)
    #[arg(long, conflicts_with_all = ["block_size", "blocks"])]
    pub model_config: Option<PathBuf>,
    /// Tokens per KV block (vLLM's --block-size)
    #[arg(long, default_value_t = 16)]
    pub kv_block_size: u64,
    /// Tensor-parallel ranks the KV heads are split over
    #[arg(long, default_value_t = 1)]
    pub tp: u64,
    /// Prompt tokens of the request whose KV moves
    #[arg(long, default_value_t = 8192)]
    pub prompt_len: u64,
    /// KV cache dtype when it differs from the model's (fp8)
    #[arg(long)]
    pub kv_dtype: Option<String>,
    /// NIXL probes: the Python on the agents' nodes that runs NIXL
    #[arg(long)]
    pub python: Option<String>,
}

impl NixlFlags {
    /// Transport fields of a NIXL probe.
    pub fn apply_transport(&self, t: &mut ProbeTransport) -> anyhow::Result<()> {
        if t.library != "nixl" {
            return Ok(());
        }
        t.python = self.python.clone().unwrap_or_default();
        if let Some(b) = &self.block_size {
            t.nixl_block_size = units::parse_size(b).context("--block-size")?;
        }
        if let Some(path) = &self.model_config {
            t.nixl_block_size = self.kv_shape(path)?.bytes_per_descriptor;
        }
        Ok(())
    }

    fn kv_shape(&self, path: &PathBuf) -> anyhow::Result<sizing::KvShape> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--model-config {}", path.display()))?;
        sizing::kv_shape(
            &text,
            self.kv_block_size,
            self.tp,
            self.prompt_len,
            self.kv_dtype.as_deref(),
        )
        .with_context(|| format!("--model-config {}", path.display()))
    }

    /// Plan of a NIXL probe: WRITE and READ unless ops were named, sizes from
    /// `--blocks` or `--model-config`. Prints the model's shape.
    pub fn shape_plan(&self, ops_given: bool, plan: &mut ProbePlanMsg) -> anyhow::Result<()> {
        if !ops_given {
            plan.ops = vec!["rma_write".into(), "rma_read".into()];
        }
        if let (Some(b), Some(blocks)) = (&self.block_size, &self.blocks) {
            let b = units::parse_size(b).context("--block-size")?;
            plan.sizes = blocks
                .split(',')
                .map(|n| {
                    let n: u64 = n.trim().parse().context("--blocks: a list of counts")?;
                    n.checked_mul(b)
                        .context("--blocks × --block-size overflows")
                })
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(path) = &self.model_config {
            let s = self.kv_shape(path)?;
            eprintln!(
                "model {}: {} layers × {} caches × {} blocks of {} tokens = {} descriptors per \
                 request, {} per descriptor ({} KV heads/rank × head_dim {} × {} {}), {} per request",
                path.display(),
                s.layers,
                s.caches_per_layer,
                s.blocks_per_request,
                self.kv_block_size,
                s.descriptors_per_request,
                units::fmt_size(s.bytes_per_descriptor),
                s.kv_heads_per_rank,
                s.head_dim,
                s.dtype_bytes,
                s.dtype,
                units::fmt_size(s.bytes_per_request()),
            );
            plan.sizes = vec![s.bytes_per_request()];
        }
        Ok(())
    }
}

pub fn print_header() {
    println!(
        "{:>9} {:<5} {:>16} {:>10} {:>10} {:>19} {:>19} {:>21} {:>8}",
        "size",
        "op",
        "descriptors",
        "GB/s",
        "avg lat",
        "prep avg/p99 µs",
        "post avg/p99 µs",
        "xfer avg/p99 µs",
        "verified"
    );
}

pub fn print_row(r: &ProbeSizeResult) {
    let Some(x) = &r.nixl else { return };
    let pair = |a: f64, b: f64| format!("{a:.1}/{b:.1}");
    println!(
        "{:>9} {:<5} {:>16} {:>10.2} {:>10} {:>19} {:>19} {:>21} {:>8}",
        units::fmt_size(r.size),
        r.op,
        format!("{} × {}", x.blocks, units::fmt_size(x.block_size)),
        r.bandwidth_bps / 1e9,
        format!("{:.1} µs", x.transfer_avg_us),
        pair(x.prepare_avg_us, x.prepare_p99_us),
        pair(x.post_avg_us, x.post_p99_us),
        pair(x.transfer_avg_us, x.transfer_p99_us),
        if x.verified { "yes" } else { "no" }
    );
}
