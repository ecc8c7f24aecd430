//! The key-path aware reader that turns one GuideLLM JSON document into a
//! [`GuidellmReport`], converting seconds to milliseconds.

use std::collections::BTreeMap;

use serde_json::Value;

use super::report::{
    GuidellmBenchmark, GuidellmReport, GuidellmRequest, GuidellmStat, RequestStatus, RequestTotals,
};
use super::{looks_like_guidellm, GuidellmError, MAX_BENCHMARKS, MAX_REQUESTS};

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
