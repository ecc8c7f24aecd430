//! Load runs in the store: points (one concurrency or rate, one trial) with their
//! aggregate, and every request with its full record.

use rusqlite::params;

use servescope_loadgen::metrics::Aggregate;
use servescope_loadgen::request::Outcome;

use super::point::PointConfig;
use super::{Result, Store, StoreError};

/// A stored point.
#[derive(Debug, Clone)]
pub struct PointRow {
    pub id: i64,
    pub point: i64,
    pub trial: i64,
    pub label: String,
    pub config: PointConfig,
    pub aggregate: Aggregate,
}

/// A measured point to store: its place in its run's sweep, its configuration,
/// aggregate and requests.
#[derive(Debug, Clone, Copy)]
pub struct LoadPoint<'a> {
    pub point: i64,
    pub trial: i64,
    pub label: &'a str,
    pub config: &'a PointConfig,
    pub aggregate: &'a Aggregate,
    pub outcomes: &'a [Outcome],
    /// Warm-up requests (stored, flagged).
    pub warmup: &'a [Outcome],
    /// When the measured requests started and ended (ns, coordinator clock).
    pub span_ns: (u64, u64),
}

fn json_err(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    }
}

impl Store {
    /// Stores a measured point and its requests (warm-up requests flagged) in one
    /// transaction; returns the point id.
    pub fn save_point(&mut self, run: i64, p: &LoadPoint<'_>) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let id = save_point_tx(&tx, run, p)?;
        tx.commit()?;
        Ok(id)
    }

    /// Points of a run, in order.
    pub fn points(&self, run: i64) -> Result<Vec<PointRow>> {
        let mut st = self.conn.prepare(
            "SELECT id, point, trial, label, config, aggregate FROM load_points WHERE run_id = ?1 ORDER BY point, trial",
        )?;
        let rows = st.query_map([run], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, point, trial, label, config, agg) = row?;
            out.push(PointRow {
                id,
                point,
                trial,
                label,
                config: serde_json::from_str(&config).map_err(json_err("point config"))?,
                aggregate: serde_json::from_str(&agg).map_err(json_err("aggregate"))?,
            });
        }
        Ok(out)
    }

    /// Number of stored (non-warm-up) requests of a point, and how many failed.
    pub fn request_counts(&self, point_id: i64) -> Result<(i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COUNT(error_class) FROM requests WHERE point_id = ?1 AND warmup = 0",
            [point_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}

/// [`Store::save_point`] inside a caller's transaction.
pub(super) fn save_point_tx(
    tx: &rusqlite::Transaction<'_>,
    run: i64,
    p: &LoadPoint<'_>,
) -> Result<i64> {
    let agg_json = serde_json::to_string(p.aggregate).map_err(json_err("aggregate"))?;
    let config = serde_json::to_string(p.config).map_err(json_err("point config"))?;
    tx.execute(
        "INSERT INTO load_points(run_id, point, trial, label, config, aggregate, started_ns, ended_ns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![run, p.point, p.trial, p.label, config, agg_json, p.span_ns.0 as i64, p.span_ns.1 as i64],
    )?;
    let id = tx.last_insert_rowid();
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO requests(point_id, idx, request_id, warmup, status, error_class, error_detail,
             record, usage, server_metrics, dispatch_lag_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (is_warmup, set) in [(0, p.outcomes), (1, p.warmup)] {
            for o in set {
                let record =
                    serde_json::to_string(&o.record).map_err(json_err("request record"))?;
                let usage = o.usage.map(|u| {
                    serde_json::json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                                       "total_tokens": u.total_tokens})
                    .to_string()
                });
                st.execute(params![
                    id,
                    o.index as i64,
                    o.request_id,
                    is_warmup,
                    o.status.map(i64::from),
                    o.record.error.as_ref().map(|e| e.key()),
                    o.error_detail,
                    record,
                    usage,
                    o.server_metrics.as_ref().map(|m| m.to_string()),
                    i64::try_from(o.dispatch_lag.as_nanos()).unwrap_or(i64::MAX),
                ])?;
            }
        }
    }
    Ok(id)
}
