//! Import and export of `vllm bench serve --save-result` JSON (vLLM 0.11–0.33 keys).
//!
//! * [`VllmBenchResult`] types the known keys and keeps every other key (the
//!   `pXX_*_ms` percentiles, `--metadata` pairs, aggregator additions…) in
//!   [`VllmBenchResult::extra`]. Each typed key is a [`Field`]: absent, `null` or a value,
//!   so export writes back exactly the keys that were read: import → export → import is
//!   lossless (compared as `serde_json::Value`). The one formatting caveat: an integer
//!   literal in a float key (`"duration": 23`) is written back as `23.0`.
//! * [`VllmBenchResult::failures`] says how many requests failed: vLLM ≤ 0.11 writes no
//!   `failed` key, so `num_prompts − completed` is the only trace of failures there.
//! * [`VllmBenchResult::provenance`] tells a per-client file from an "all-parts"
//!   aggregate written by a multi-client merge script (summed throughputs and
//!   *averaged* percentiles): in a genuine vLLM file `request_throughput` is exactly
//!   `completed / duration`; an aggregate breaks that identity.
//! * [`pool_parts`] pools `partN/` files from their per-request arrays (`--save-detailed`:
//!   `ttfts`, `itls`, `output_lens`, `errors`) and recomputes every statistic as vLLM
//!   would over all samples; [`compare_parts`] sets pooled percentiles (when arrays
//!   exist) beside the averaged ones and the range the pooled value must lie in.
//! * [`VllmBenchResult::from_aggregate`] exports servescope's own [`Aggregate`] with the
//!   same key names and units (ms for latency keys), so existing plotting scripts work.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use thiserror::Error;

use servescope_loadgen::stats::StatsError;

mod field;
mod figures;
mod parts;
mod result;

pub use field::{Field, RequestRate};
pub use figures::ExportMeta;
pub use parts::{
    compare_parts, pool_parts, request_samples, MetricComparison, PartsComparison, RequestSamples,
};
pub use result::{FailureReport, Metric, Provenance, StoredStats, VllmBenchResult};

/// Errors from reading or writing vLLM bench JSON.
#[derive(Debug, Error)]
pub enum VllmJsonError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// File name.
        file: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Not JSON.
    #[error("{file}: not valid JSON: {message}")]
    Parse {
        /// File name.
        file: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// The top level is not an object.
    #[error("{file}: expected a JSON object at the top level")]
    NotAnObject {
        /// File name.
        file: String,
    },
    /// A known key has a value of the wrong type.
    #[error("{file}: key {key:?}: {message}")]
    BadKey {
        /// File name.
        file: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file holds another number of results than expected.
    #[error("{file}: holds {count} results, expected exactly one (use import_file_all)")]
    NotOneResult {
        /// File name.
        file: String,
        /// How many results it holds.
        count: usize,
    },
    /// Per-request arrays needed for pooling are missing or inconsistent.
    #[error("{file}: cannot pool: {message}")]
    NoPerRequestData {
        /// File name.
        file: String,
        /// What is missing.
        message: String,
    },
    /// Serialisation failed (non-finite number).
    #[error("cannot write JSON: {0}")]
    Serialize(String),
    /// Statistics error.
    #[error(transparent)]
    Stats(#[from] StatsError),
}

fn key_name(file: &str, key: &str, e: serde_json::Error) -> VllmJsonError {
    VllmJsonError::BadKey {
        file: file.to_string(),
        key: key.to_string(),
        message: e.to_string(),
    }
}

/// Parses one result object; `file` names the source in errors.
pub fn parse_value(value: Value, file: &str) -> Result<VllmBenchResult, VllmJsonError> {
    let Value::Object(map) = value else {
        return Err(VllmJsonError::NotAnObject {
            file: file.to_string(),
        });
    };
    // Check the known keys one by one so that an error names the key.
    for key in VllmBenchResult::KNOWN_KEYS {
        if let Some(v) = map.get(*key) {
            let mut one = Map::new();
            one.insert((*key).to_string(), v.clone());
            serde_json::from_value::<VllmBenchResult>(Value::Object(one))
                .map_err(|e| key_name(file, key, e))?;
        }
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| VllmJsonError::Parse {
        file: file.to_string(),
        message: e.to_string(),
    })
}

/// Parses every result object in `text` (one, or several with `--append-result`).
pub fn parse_all(text: &str, file: &str) -> Result<Vec<VllmBenchResult>, VllmJsonError> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|v| {
            let v = v.map_err(|e| VllmJsonError::Parse {
                file: file.to_string(),
                message: e.to_string(),
            })?;
            parse_value(v, file)
        })
        .collect()
}

/// Parses text holding exactly one result.
pub fn parse_str(text: &str, file: &str) -> Result<VllmBenchResult, VllmJsonError> {
    let mut all = parse_all(text, file)?;
    if all.len() != 1 {
        return Err(VllmJsonError::NotOneResult {
            file: file.to_string(),
            count: all.len(),
        });
    }
    Ok(all.remove(0))
}

fn read(path: &Path) -> Result<String, VllmJsonError> {
    std::fs::read_to_string(path).map_err(|source| VllmJsonError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// Imports a file holding exactly one result.
pub fn import_file(path: &Path) -> Result<VllmBenchResult, VllmJsonError> {
    parse_str(&read(path)?, &path.display().to_string())
}

/// Imports every result of a file (`--append-result` files hold several).
pub fn import_file_all(path: &Path) -> Result<Vec<VllmBenchResult>, VllmJsonError> {
    parse_all(&read(path)?, &path.display().to_string())
}

/// Serialises to pretty JSON (every key that was read, typed keys first).
pub fn to_json_string(result: &VllmBenchResult) -> Result<String, VllmJsonError> {
    serde_json::to_string_pretty(result).map_err(|e| VllmJsonError::Serialize(e.to_string()))
}

/// Writes a result as pretty JSON.
pub fn export_file(path: &Path, result: &VllmBenchResult) -> Result<(), VllmJsonError> {
    std::fs::write(path, to_json_string(result)?).map_err(|source| VllmJsonError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// A path and what it holds, for listing a directory of results.
pub fn import_dir(dir: &Path) -> Result<Vec<(PathBuf, VllmBenchResult)>, VllmJsonError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| VllmJsonError::Io {
            file: d.display().to_string(),
            source,
        })?;
        for e in entries {
            let path = e
                .map_err(|source| VllmJsonError::Io {
                    file: d.display().to_string(),
                    source,
                })?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| import_file(&p).map(|r| (p, r)))
        .collect()
}

#[cfg(test)]
mod tests;
