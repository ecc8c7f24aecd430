//! Dumps a stored run's samples as CSV or JSON lines, one row per point, with the
//! agent's host timestamp and the coordinator-clock timestamp (host − offset).

use std::collections::HashMap;
use std::io::Write;

use crate::analysis::points::{flatten, Value};
use crate::store::{Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Corrupt {
        what: "output",
        message: e.to_string(),
    }
}

/// Writes every point of `run` to `w`. Returns the number of rows.
pub fn export(store: &Store, run: i64, format: Format, w: &mut dyn Write) -> Result<u64> {
    store.run(run)?;
    let agents = store.run_agents(run)?;
    let mut meta = HashMap::new();
    for a in &agents {
        meta.insert(
            a.agent_id,
            (
                a.hostname.clone(),
                a.offset_ns,
                store.inventory(run, a.agent_id)?,
            ),
        );
    }
    if format == Format::Csv {
        writeln!(w, "run,host,seq,t_ns,t_coord_ns,metric,labels,value").map_err(io)?;
    }
    let mut rows = 0u64;
    store.for_each_sample(run, |s| {
        let (host, offset, inv) = meta
            .get(&s.agent_id)
            .map(|(h, o, i)| (h.as_str(), *o, i.as_ref()))
            .unwrap_or(("", None, None));
        let t = s.sample.t_ns;
        let tc = offset.map(|o| (t as i128 - o as i128) as i64);
        for pt in flatten(&s.sample, inv) {
            rows += 1;
            match format {
                Format::Csv => {
                    let labels: Vec<String> =
                        pt.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    writeln!(
                        w,
                        "{run},{},{},{t},{},{},{},{}",
                        csv_field(host),
                        s.sample.seq,
                        tc.map(|v| v.to_string()).unwrap_or_default(),
                        pt.metric,
                        csv_field(&labels.join(";")),
                        pt.value
                    )
                    .map_err(io)?;
                }
                Format::Json => {
                    let labels: serde_json::Map<String, serde_json::Value> = pt
                        .labels
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), v.clone().into()))
                        .collect();
                    let value = match pt.value {
                        Value::Int(v) => serde_json::Value::from(v),
                        v => serde_json::Value::from(v.as_f64()),
                    };
                    let o = serde_json::json!({
                        "run": run, "host": host, "seq": s.sample.seq, "t_ns": t,
                        "t_coord_ns": tc, "metric": pt.metric, "labels": labels, "value": value,
                    });
                    writeln!(w, "{o}").map_err(io)?;
                }
            }
        }
        Ok(())
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests;
