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
//! [`crate::load::stats`] may differ from the tool's own; means agree.
//!
//! The file is untrusted input: its size is bounded ([`MAX_FILE_BYTES`]), values of
//! the wrong type give a [`GuidellmError::Key`] naming the file and the key path, and
//! nothing panics.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

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

/// One of GuideLLM's distributions, in the unit of the metric it belongs to (this
/// module scales seconds to milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuidellmStat {
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub std_dev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub count: Option<u64>,
    /// GuideLLM's keys (`p001` = 0.1, `p01` = 1, `p99` = 99, `p999` = 99.9) → value.
    pub percentiles: BTreeMap<String, f64>,
}

impl GuidellmStat {
    /// The tool's own percentile `p` (0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9).
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let key = if (p - 0.1).abs() < 1e-9 {
            "p001".to_string()
        } else if (p - 99.9).abs() < 1e-9 {
            "p999".to_string()
        } else if p.fract() == 0.0 && (0.0..100.0).contains(&p) {
            format!("p{:02}", p as u32)
        } else {
            return None;
        };
        self.percentiles.get(&key).copied()
    }

    fn scaled(mut self, k: f64) -> GuidellmStat {
        for v in [
            &mut self.mean,
            &mut self.median,
            &mut self.std_dev,
            &mut self.min,
            &mut self.max,
        ]
        .into_iter()
        .flatten()
        {
            *v *= k;
        }
        for v in self.percentiles.values_mut() {
            *v *= k;
        }
        self
    }
}

/// Which of GuideLLM's request lists a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Successful,
    Errored,
    Incomplete,
}

/// One per-request record, converted to milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuidellmRequest {
    pub status: RequestStatus,
    pub request_id: Option<String>,
    /// Unix seconds.
    pub start_time_s: Option<f64>,
    pub end_time_s: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub itl_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    /// `request_latency` (seconds in the file).
    pub e2e_ms: Option<f64>,
    pub prompt_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// `info.error`, when the request failed.
    pub error: Option<String>,
}

/// Request counts of one benchmark (over all requests, sampled or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestTotals {
    pub successful: u64,
    pub errored: u64,
    pub incomplete: u64,
    pub total: u64,
}

/// One benchmark (one strategy point) of a GuideLLM run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuidellmBenchmark {
    /// `config.strategy.type_`: `concurrent`, `synchronous`, `throughput`, `constant`, `poisson`…
    pub strategy: Option<String>,
    /// `config.strategy.streams` (concurrent).
    pub streams: Option<u64>,
    /// `config.strategy.rate` (constant/poisson), requests/s.
    pub rate: Option<f64>,
    pub totals: RequestTotals,
    pub duration_s: Option<f64>,
    /// Successful requests' distributions, in ms.
    pub ttft_ms: Option<GuidellmStat>,
    pub itl_ms: Option<GuidellmStat>,
    pub tpot_ms: Option<GuidellmStat>,
    pub e2e_ms: Option<GuidellmStat>,
    /// `requests_per_second.successful.mean`.
    pub request_throughput: Option<f64>,
    /// `output_tokens_per_second.total.mean` (what GuideLLM prints as server output tok/s).
    pub output_throughput: Option<f64>,
    /// `tokens_per_second.total.mean`.
    pub total_token_throughput: Option<f64>,
    pub requests: Vec<GuidellmRequest>,
}

impl GuidellmBenchmark {
    /// Samples of one per-request field over the successful records.
    pub fn successful_samples(&self, f: impl Fn(&GuidellmRequest) -> Option<f64>) -> Vec<f64> {
        self.requests
            .iter()
            .filter(|r| r.status == RequestStatus::Successful)
            .filter_map(f)
            .collect()
    }

    /// Mean TTFT recomputed from the per-request records (ms), to check the tool's own.
    pub fn recomputed_mean_ttft_ms(&self) -> Option<f64> {
        crate::load::stats::mean(&self.successful_samples(|r| r.ttft_ms))
    }

    /// Mean end-to-end latency recomputed from the per-request records (ms).
    pub fn recomputed_mean_e2e_ms(&self) -> Option<f64> {
        crate::load::stats::mean(&self.successful_samples(|r| r.e2e_ms))
    }

    /// Percentile `p` of TTFT recomputed with numpy's linear method (ms).
    pub fn recomputed_ttft_percentile_ms(&self, p: f64) -> Option<f64> {
        crate::load::stats::percentile(&mut self.successful_samples(|r| r.ttft_ms), p)
    }
}

/// A whole GuideLLM export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuidellmReport {
    /// `metadata.guidellm_version`.
    pub guidellm_version: Option<String>,
    /// `metadata.version` (the report schema).
    pub schema_version: Option<u64>,
    /// `config.spec.backend.model` (or the first benchmark's `config.backend.model`).
    pub model: Option<String>,
    pub target: Option<String>,
    pub benchmarks: Vec<GuidellmBenchmark>,
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

/// Key-path aware reader over one document.
struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> GuidellmError {
        GuidellmError::Key {
            file: self.file.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Optional number: absent or null → None; anything else but a finite number → error.
    fn opt_f64(&self, v: Option<&Value>, path: &str) -> Result<Option<f64>, GuidellmError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(self.err(path, "number out of range")),
            },
            Some(other) => Err(self.err(path, format!("expected a number, found {}", kind(other)))),
        }
    }

    /// Optional non-negative integer (GuideLLM sometimes writes counts as `20.0`).
    fn opt_u64(&self, v: Option<&Value>, path: &str) -> Result<Option<u64>, GuidellmError> {
        match self.opt_f64(v, path)? {
            None => Ok(None),
            Some(x) if x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => Ok(Some(x as u64)),
            Some(x) => Err(self.err(path, format!("expected a non-negative integer, found {x}"))),
        }
    }

    fn opt_str(&self, v: Option<&Value>, path: &str) -> Result<Option<String>, GuidellmError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(path, format!("expected a string, found {}", kind(other)))),
        }
    }

    fn opt_obj<'v>(
        &self,
        v: Option<&'v Value>,
        path: &str,
    ) -> Result<Option<&'v serde_json::Map<String, Value>>, GuidellmError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => {
                Err(self.err(path, format!("expected an object, found {}", kind(other))))
            }
        }
    }

    fn opt_arr<'v>(
        &self,
        v: Option<&'v Value>,
        path: &str,
    ) -> Result<Option<&'v Vec<Value>>, GuidellmError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(self.err(path, format!("expected an array, found {}", kind(other)))),
        }
    }

    fn stat(&self, v: Option<&Value>, path: &str) -> Result<Option<GuidellmStat>, GuidellmError> {
        let Some(m) = self.opt_obj(v, path)? else {
            return Ok(None);
        };
        let f = |k: &str| self.opt_f64(m.get(k), &format!("{path}.{k}"));
        let mut percentiles = BTreeMap::new();
        let ppath = format!("{path}.percentiles");
        if let Some(ps) = self.opt_obj(m.get("percentiles"), &ppath)? {
            for (k, pv) in ps.iter().take(64) {
                if let Some(x) = self.opt_f64(Some(pv), &format!("{ppath}.{k}"))? {
                    percentiles.insert(k.clone(), x);
                }
            }
        }
        Ok(Some(GuidellmStat {
            mean: f("mean")?,
            median: f("median")?,
            std_dev: f("std_dev")?,
            min: f("min")?,
            max: f("max")?,
            count: self.opt_u64(m.get("count"), &format!("{path}.count"))?,
            percentiles,
        }))
    }

    fn request(
        &self,
        v: &Value,
        status: RequestStatus,
        path: &str,
    ) -> Result<GuidellmRequest, GuidellmError> {
        let m = self
            .opt_obj(Some(v), path)?
            .ok_or_else(|| self.err(path, "expected an object, found null"))?;
        let f = |k: &str| self.opt_f64(m.get(k), &format!("{path}.{k}"));
        let u = |k: &str| self.opt_u64(m.get(k), &format!("{path}.{k}"));
        let info = self.opt_obj(m.get("info"), &format!("{path}.info"))?;
        let error = match info.and_then(|i| i.get("error")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        Ok(GuidellmRequest {
            status,
            request_id: self.opt_str(m.get("request_id"), &format!("{path}.request_id"))?,
            start_time_s: f("request_start_time")?,
            end_time_s: f("request_end_time")?,
            ttft_ms: f("time_to_first_token_ms")?,
            itl_ms: f("inter_token_latency_ms")?,
            tpot_ms: f("time_per_output_token_ms")?,
            e2e_ms: f("request_latency")?.map(|s| s * 1000.0),
            prompt_tokens: u("prompt_tokens")?,
            output_tokens: u("output_tokens")?,
            error,
        })
    }

    fn benchmark(&self, v: &Value, path: &str) -> Result<GuidellmBenchmark, GuidellmError> {
        let b = self
            .opt_obj(Some(v), path)?
            .ok_or_else(|| self.err(path, "expected an object, found null"))?;
        let strategy = self.opt_obj(
            v.pointer("/config/strategy"),
            &format!("{path}.config.strategy"),
        )?;
        let sp = format!("{path}.config.strategy");
        let (strategy_type, streams, rate) = match strategy {
            Some(s) => (
                self.opt_str(s.get("type_"), &format!("{sp}.type_"))?,
                self.opt_u64(s.get("streams"), &format!("{sp}.streams"))?,
                self.opt_f64(s.get("rate"), &format!("{sp}.rate"))?,
            ),
            None => (None, None, None),
        };
        let mpath = format!("{path}.metrics");
        let metrics = self
            .opt_obj(b.get("metrics"), &mpath)?
            .ok_or_else(|| self.err(&mpath, "missing"))?;

        // Counts: metrics.request_totals (0.4+), else scheduler_metrics.requests_made.
        let (tot, tpath) = match metrics.get("request_totals") {
            Some(t) if !t.is_null() => (t, format!("{mpath}.request_totals")),
            _ => (
                v.pointer("/scheduler_metrics/requests_made")
                    .ok_or_else(|| self.err(&format!("{mpath}.request_totals"), "missing"))?,
                format!("{path}.scheduler_metrics.requests_made"),
            ),
        };
        let tot = self
            .opt_obj(Some(tot), &tpath)?
            .ok_or_else(|| self.err(&tpath, "expected an object, found null"))?;
        let count = |k: &str| -> Result<u64, GuidellmError> {
            let p = format!("{tpath}.{k}");
            self.opt_u64(tot.get(k), &p)?
                .ok_or_else(|| self.err(&p, "missing"))
        };
        let (successful, errored, incomplete) = (
            count("successful")?,
            count("errored")?,
            count("incomplete")?,
        );
        let total = match self.opt_u64(tot.get("total"), &format!("{tpath}.total"))? {
            Some(t) => t,
            None => successful
                .saturating_add(errored)
                .saturating_add(incomplete),
        };

        let stat = |name: &str, status: &str| {
            let p = format!("{mpath}.{name}");
            match self.opt_obj(metrics.get(name), &p)? {
                Some(m) => self.stat(m.get(status), &format!("{p}.{status}")),
                None => Ok(None),
            }
        };
        let mean_of = |name: &str, status: &str| -> Result<Option<f64>, GuidellmError> {
            Ok(stat(name, status)?.and_then(|s| s.mean))
        };

        let mut requests = Vec::new();
        let rpath = format!("{path}.requests");
        if let Some(reqs) = self.opt_obj(b.get("requests"), &rpath)? {
            for (key, status) in [
                ("successful", RequestStatus::Successful),
                ("errored", RequestStatus::Errored),
                ("incomplete", RequestStatus::Incomplete),
            ] {
                let lp = format!("{rpath}.{key}");
                let Some(list) = self.opt_arr(reqs.get(key), &lp)? else {
                    continue;
                };
                if requests.len().saturating_add(list.len()) > MAX_REQUESTS {
                    return Err(self.err(&lp, format!("more than {MAX_REQUESTS} requests")));
                }
                for (i, r) in list.iter().enumerate() {
                    requests.push(self.request(r, status, &format!("{lp}[{i}]"))?);
                }
            }
        }

        Ok(GuidellmBenchmark {
            strategy: strategy_type,
            streams,
            rate,
            totals: RequestTotals {
                successful,
                errored,
                incomplete,
                total,
            },
            duration_s: self.opt_f64(b.get("duration"), &format!("{path}.duration"))?,
            ttft_ms: stat("time_to_first_token_ms", "successful")?,
            itl_ms: stat("inter_token_latency_ms", "successful")?,
            tpot_ms: stat("time_per_output_token_ms", "successful")?,
            e2e_ms: stat("request_latency", "successful")?.map(|s| s.scaled(1000.0)),
            request_throughput: mean_of("requests_per_second", "successful")?,
            output_throughput: mean_of("output_tokens_per_second", "total")?,
            total_token_throughput: mean_of("tokens_per_second", "total")?,
            requests,
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Imports an already-parsed GuideLLM export; `file` names it in errors.
pub fn parse_value(v: &Value, file: &str) -> Result<GuidellmReport, GuidellmError> {
    let cx = Ctx { file };
    if !v.is_object() {
        return Err(GuidellmError::NotGuidellm {
            file: file.to_string(),
            why: format!("expected an object at the top level, found {}", kind(v)),
        });
    }
    if !looks_like_guidellm(v) {
        return Err(GuidellmError::NotGuidellm {
            file: file.to_string(),
            why: "no 'benchmarks' array with metadata.guidellm_version or a '*_benchmark' type_"
                .to_string(),
        });
    }
    let benches = cx
        .opt_arr(v.get("benchmarks"), "benchmarks")?
        .ok_or_else(|| cx.err("benchmarks", "missing"))?;
    if benches.len() > MAX_BENCHMARKS {
        return Err(cx.err(
            "benchmarks",
            format!("{} benchmarks, more than {MAX_BENCHMARKS}", benches.len()),
        ));
    }
    let mut benchmarks = Vec::with_capacity(benches.len());
    for (i, b) in benches.iter().enumerate() {
        benchmarks.push(cx.benchmark(b, &format!("benchmarks[{i}]"))?);
    }
    let backend_field = |k: &str| -> Result<Option<String>, GuidellmError> {
        let top = format!("/config/spec/backend/{k}");
        match cx.opt_str(v.pointer(&top), &format!("config.spec.backend.{k}"))? {
            Some(s) => Ok(Some(s)),
            None => cx.opt_str(
                v.pointer(&format!("/benchmarks/0/config/backend/{k}")),
                &format!("benchmarks[0].config.backend.{k}"),
            ),
        }
    };
    Ok(GuidellmReport {
        guidellm_version: cx.opt_str(
            v.pointer("/metadata/guidellm_version"),
            "metadata.guidellm_version",
        )?,
        schema_version: cx.opt_u64(v.pointer("/metadata/version"), "metadata.version")?,
        model: backend_field("model")?,
        target: backend_field("target")?,
        benchmarks,
    })
}
