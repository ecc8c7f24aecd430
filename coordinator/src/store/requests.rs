//! Reading stored requests back (attribution joins them with engine data).

use super::{Result, Store, StoreError};
use servescope_loadgen::metrics::RequestRecord;

/// One measured (not warm-up) request as stored.
#[derive(Debug, Clone)]
pub struct StoredRequest {
    pub point_id: i64,
    pub idx: i64,
    pub request_id: String,
    pub status: Option<i64>,
    pub error_class: Option<String>,
    pub error_detail: Option<String>,
    pub record: RequestRecord,
    /// vLLM's per-request `metrics` block, when the server sent one.
    pub server_metrics: Option<serde_json::Value>,
    pub dispatch_lag_ns: i64,
}

/// Distinct error messages shown per point (in a load run's results, `show` and
/// the report).
pub const ERRORS_SHOWN: usize = 5;

/// Failed requests of a point that share a class and a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorSample {
    pub class: String,
    /// What the server or the client said (e.g. `HTTP 400 Bad Request: <vLLM's message>`).
    pub detail: String,
    pub count: i64,
}

impl Store {
    /// The measured requests of a point, in index order.
    pub fn point_requests(&self, point_id: i64) -> Result<Vec<StoredRequest>> {
        let mut st = self.conn.prepare_cached(
            "SELECT idx, request_id, status, error_class, error_detail, record, server_metrics, dispatch_lag_ns
             FROM requests WHERE point_id = ?1 AND warmup = 0 ORDER BY idx",
        )?;
        let rows = st.query_map([point_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (idx, request_id, status, error_class, error_detail, record, sm, lag) = row?;
            let corrupt = |what: &'static str| {
                move |e: serde_json::Error| StoreError::Corrupt {
                    what,
                    message: e.to_string(),
                }
            };
            out.push(StoredRequest {
                point_id,
                idx,
                request_id,
                status,
                error_class,
                error_detail,
                record: serde_json::from_str(&record).map_err(corrupt("request record"))?,
                server_metrics: sm
                    .map(|s| serde_json::from_str(&s))
                    .transpose()
                    .map_err(corrupt("server metrics"))?,
                dispatch_lag_ns: lag,
            });
        }
        Ok(out)
    }
}

impl Store {
    /// The records of a point's measured (not warm-up) requests, in index order;
    /// empty when the point has no stored requests (e.g. imported aggregates).
    pub fn measured_records(&self, point_id: i64) -> Result<Vec<RequestRecord>> {
        let mut st = self.conn.prepare_cached(
            "SELECT record FROM requests WHERE point_id = ?1 AND warmup = 0 ORDER BY idx",
        )?;
        let rows = st.query_map([point_id], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for text in rows {
            out.push(
                serde_json::from_str(&text?).map_err(|e| StoreError::Corrupt {
                    what: "request record",
                    message: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    /// What the point's failed measured requests said, grouped by class and message,
    /// most frequent first (at most `limit` distinct messages).
    pub fn point_errors(&self, point_id: i64, limit: usize) -> Result<Vec<ErrorSample>> {
        let mut st = self.conn.prepare_cached(
            "SELECT error_class, COALESCE(error_detail, ''), COUNT(*) FROM requests
             WHERE point_id = ?1 AND warmup = 0 AND error_class IS NOT NULL
             GROUP BY error_class, error_detail ORDER BY COUNT(*) DESC, MIN(idx) LIMIT ?2",
        )?;
        let rows = st.query_map(
            rusqlite::params![point_id, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(ErrorSample {
                    class: r.get(0)?,
                    detail: r.get(1)?,
                    count: r.get(2)?,
                })
            },
        )?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// When a point's measured requests started and ended (ns, coordinator clock).
    pub fn point_span(&self, point_id: i64) -> Result<(i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT started_ns, ended_ns FROM load_points WHERE id = ?1",
            [point_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}
