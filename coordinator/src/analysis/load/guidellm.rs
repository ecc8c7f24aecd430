//! Import of GuideLLM's JSON results export (`guidellm run … --output kind=json`,
//! the `benchmarks.json` it writes; checked against GuideLLM 0.8.1, report
//! `metadata.version` 2).
//!
//! Layout, as GuideLLM writes it: `{"metadata": {...}, "config": {...},
//! "benchmarks": [ {...}, … ]}`; each benchmark holds
//! - `config.strategy` (`type_`: `concurrent`/`constant`/`poisson`/…, `streams`, `rate`),
//! - `metrics.request_totals` (`successful`/`errored`/`incomplete`/`total` counts),
//! - `metrics.<metric>.<status>`: a distribution (`mean`, `median`, `std_dev`, `min`,
//!   `max`, `count`, `percentiles.{p001,p01,p05,p10,p25,p50,p75,p90,p95,p99,p999}`)
//!   for each of `successful`/`errored`/`incomplete`/`total`,
//! - `requests.{successful,errored,incomplete}`: one record per request (GuideLLM may
//!   sample them; the counts above are always over all requests).
//!
//! Units: GuideLLM reports `time_to_first_token_ms`, `inter_token_latency_ms` and
//! `time_per_output_token_ms` in milliseconds, but `request_latency` (end to end) in
//! **seconds**, and request times (`request_start_time`…) as Unix seconds. Everything
//! here is converted to milliseconds. Throughputs are per second.
//!
//! Note that GuideLLM's percentiles are not numpy's linear ones (with 20 samples its
//! p99 is the maximum), so a p99 recomputed from the per-request records with
//! [`servescope_loadgen::stats`] may differ from the tool's own; means agree.
//!
//! The file is untrusted input: its size is bounded ([`MAX_FILE_BYTES`]), values of
//! the wrong type give a [`GuidellmError::Key`] naming the file and the key path, and
//! nothing panics.

use std::io::Read;
use std::path::Path;

use serde_json::Value;
use thiserror::Error;

mod parse;
mod report;

pub use parse::parse_value;
pub use report::{
    GuidellmBenchmark, GuidellmReport, GuidellmRequest, GuidellmStat, RequestStatus, RequestTotals,
};

/// Largest file accepted (GuideLLM's export is a few hundred KiB per thousand requests).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Most benchmarks read from one file.
pub const MAX_BENCHMARKS: usize = 100_000;
/// Most per-request records read per benchmark (all statuses together).
pub const MAX_REQUESTS: usize = 10_000_000;

/// Why a GuideLLM file did not import.
#[derive(Debug, Error)]
pub enum GuidellmError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes is more than the {limit} accepted")]
    TooLarge { file: String, size: u64, limit: u64 },
    #[error("{file}: not valid JSON: {message}")]
    Json { file: String, message: String },
    #[error("{file}: not a GuideLLM results export: {why}")]
    NotGuidellm { file: String, why: String },
    #[error("{file}: key {path}: {message}")]
    Key {
        file: String,
        path: String,
        message: String,
    },
}

/// Whether a parsed JSON document looks like a GuideLLM export (for content sniffing).
pub fn looks_like_guidellm(v: &Value) -> bool {
    let Some(obj) = v.as_object() else {
        return false;
    };
    let Some(benches) = obj.get("benchmarks").and_then(Value::as_array) else {
        return false;
    };
    let versioned = v
        .pointer("/metadata/guidellm_version")
        .is_some_and(Value::is_string);
    let typed = benches.first().is_some_and(|b| {
        b.get("type_")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("_benchmark"))
    });
    versioned || typed
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, GuidellmError> {
    let file = path.display().to_string();
    let io = |source| GuidellmError::Io {
        file: file.clone(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(GuidellmError::TooLarge {
            file,
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(GuidellmError::TooLarge {
            file,
            size: buf.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(buf)
}

fn parse_json(bytes: &[u8], file: &str) -> Result<Value, GuidellmError> {
    serde_json::from_slice(bytes).map_err(|e| GuidellmError::Json {
        file: file.to_string(),
        message: e.to_string(),
    })
}

/// Whether the file at `path` is a GuideLLM export (reads and parses it; false on any error).
pub fn is_guidellm_file(path: &Path) -> bool {
    read_bounded(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| looks_like_guidellm(&v))
}

/// Reads and imports a GuideLLM JSON export.
pub fn import_file(path: &Path) -> Result<GuidellmReport, GuidellmError> {
    let file = path.display().to_string();
    let bytes = read_bounded(path)?;
    let v = parse_json(&bytes, &file)?;
    parse_value(&v, &file)
}

/// Imports a GuideLLM export from its text; `file` names it in errors.
pub fn import_str(text: &str, file: &str) -> Result<GuidellmReport, GuidellmError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(GuidellmError::TooLarge {
            file: file.to_string(),
            size: text.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    parse_value(&parse_json(text.as_bytes(), file)?, file)
}
