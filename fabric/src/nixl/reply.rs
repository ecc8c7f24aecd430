//! The driver's replies read into the engine's types: `hello` into what this node's
//! NIXL offers, `run` into a [`SizeResult`] with the nixlbench columns.

use serde_json::Value;

use crate::error::FabricError;
use crate::plan::{AvgP99, SizeResult, Verify, XferStats};

/// What the driver's `hello` says about this node's NIXL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hello {
    /// Import package (nixl_cu13, nixl_cu12, nixl) and its distribution version.
    pub module: String,
    pub version: String,
    pub python_version: String,
    pub plugins: Vec<String>,
    /// Backends that load (UCX, LIBFABRIC) with their memory types.
    pub backends: Vec<(String, Vec<String>)>,
    /// Backends that do not, with NIXL's or the loader's reason.
    pub backend_errors: Vec<(String, String)>,
    /// The libucp file the process mapped and its `ucp_get_version()`.
    pub ucx_path: String,
    pub ucx_version: String,
    pub ucx_error: String,
    pub libs: Vec<String>,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default()
}

impl Hello {
    pub fn from_json(v: &Value) -> Hello {
        let mut h = Hello {
            module: s(&v["nixl_module"]),
            version: s(&v["nixl_version"]),
            python_version: s(&v["python"]),
            plugins: strings(&v["plugins"]),
            ucx_path: s(&v["ucx"]["libucp"]),
            ucx_version: s(&v["ucx"]["version"]),
            ucx_error: s(&v["ucx"]["error"]),
            libs: strings(&v["libs"]),
            ..Default::default()
        };
        if let Some(b) = v["backends"].as_object() {
            for (name, info) in b {
                match info.get("error") {
                    Some(e) => h.backend_errors.push((name.clone(), s(e))),
                    None => h.backends.push((name.clone(), strings(&info["mem_types"]))),
                }
            }
        }
        h
    }

    /// Refuses a backend that did not load, with NIXL's reason.
    pub fn require_backend(&self, backend: &str) -> Result<(), FabricError> {
        if self.backends.iter().any(|(n, _)| n == backend) {
            return Ok(());
        }
        let why = self
            .backend_errors
            .iter()
            .find(|(n, _)| n == backend)
            .map_or_else(
                || format!("plugins: {}", self.plugins.join(", ")),
                |(_, e)| e.clone(),
            );
        Err(FabricError::NixlUnavailable(format!(
            "{} {}: backend {backend} unusable: {why}",
            self.module, self.version
        )))
    }

    /// "nixl_cu13 1.5.1".
    pub fn describe(&self) -> String {
        format!("{} {}", self.module, self.version)
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn avg_p99(v: &Value) -> AvgP99 {
    AvgP99 {
        avg_us: f(&v["avg"]),
        p99_us: f(&v["p99"]),
    }
}

/// The op names a NIXL result carries.
pub fn op_name(op: &str) -> &'static str {
    if op == "READ" {
        "READ"
    } else {
        "WRITE"
    }
}

/// A `run` reply as a result row. Bandwidth is bytes over the average transfer
/// time (as nixlbench reports it); latency p50/p99 are the transfer times'.
pub fn size_result(v: &Value) -> Result<SizeResult, FabricError> {
    let size = v["size"]
        .as_u64()
        .filter(|&n| n > 0)
        .ok_or_else(|| FabricError::Nixl {
            cmd: "run".into(),
            kind: "protocol".into(),
            message: format!("reply without a size: {:.200}", v.to_string()),
        })?;
    let iters = v["iters"].as_u64().unwrap_or(0);
    let transfer = avg_p99(&v["transfer_us"]);
    let secs = transfer.avg_us * iters as f64 / 1e6;
    let us_to_ns = |us: f64| Some((us * 1e3).round() as u64);
    Ok(SizeResult {
        size,
        op: op_name(v["op"].as_str().unwrap_or("")),
        bytes: size * iters,
        messages: iters,
        seconds: secs,
        bandwidth_bps: if transfer.avg_us > 0.0 {
            size as f64 / (transfer.avg_us * 1e-6)
        } else {
            0.0
        },
        messages_per_s: if secs > 0.0 { iters as f64 / secs } else { 0.0 },
        latency_p50_ns: us_to_ns(f(&v["transfer_us"]["p50"])),
        latency_p99_ns: us_to_ns(transfer.p99_us),
        // The driver checks contents when the run asks for it (the initiator for READ,
        // the target's notification for WRITE); a mismatch is an error reply.
        verify: if v["verified"].as_bool().unwrap_or(false) {
            Verify::Verified
        } else {
            Verify::Off
        },
        nixl: Some(XferStats {
            blocks: v["blocks"].as_u64().unwrap_or(1),
            block_size: v["block_size"].as_u64().unwrap_or(size),
            iterations: iters,
            prepare: avg_p99(&v["prepare_us"]),
            post: avg_p99(&v["post_us"]),
            transfer,
            dlist_prep_us: f(&v["dlist_prep_us"]),
            verified: v["verified"].as_bool().unwrap_or(false),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_run_replies_parse() {
        let h = Hello::from_json(&serde_json::json!({
            "nixl_module": "nixl_cu13", "nixl_version": "1.5.1", "python": "3.11.2",
            "plugins": ["UCX", "LIBFABRIC", "POSIX"],
            "backends": {"UCX": {"params": {}, "mem_types": ["DRAM", "VRAM"]},
                         "LIBFABRIC": {"error": "plugin did not load: libfabric.so.1: cannot open shared object file"}},
            "ucx": {"libucp": "/v/nixl_cu13.libs/libucp-b39b3ed9.so.0.0.0", "version": "1.23.0"},
            "libs": []}));
        assert_eq!(h.describe(), "nixl_cu13 1.5.1");
        assert_eq!(h.ucx_version, "1.23.0");
        assert!(h.require_backend("UCX").is_ok());
        let e = h.require_backend("LIBFABRIC").expect_err("no libfabric");
        assert!(
            e.to_string().starts_with("NIXL not available on this node (nixl_cu13 1.5.1: backend LIBFABRIC unusable: plugin did not load: libfabric.so.1"),
            "{e}"
        );
        let r = size_result(&serde_json::json!({
            "op": "READ", "size": 1048576, "blocks": 256, "block_size": 4096, "iters": 10,
            "warmup": 3, "dlist_prep_us": 50.0, "verified": true,
            "prepare_us": {"avg": 10.0, "p50": 9.0, "p99": 20.0},
            "post_us": {"avg": 5.0, "p50": 5.0, "p99": 7.0},
            "transfer_us": {"avg": 100.0, "p50": 98.0, "p99": 150.0},
            "gbps": {"median": 10.7, "best": 11.0, "avg": 10.48}}))
        .expect("row");
        assert_eq!(r.op, "READ");
        assert!((r.bandwidth_bps - 1048576.0 / 100e-6).abs() < 1.0);
        assert_eq!(r.latency_p50_ns, Some(98_000));
        let x = r.nixl.expect("stats");
        assert_eq!((x.blocks, x.block_size, x.verified), (256, 4096, true));
        assert_eq!(x.post.p99_us, 7.0);
        assert!(size_result(&serde_json::json!({"op": "READ"})).is_err());
    }
}
