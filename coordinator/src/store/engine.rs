//! Engine metrics in the store: every `/metrics` scrape of a run as it came (raw
//! body, or the error), so windows can be recomputed later with a better parser;
//! and the request spans the OTLP receiver collected (JSON), keyed by request id.

use rusqlite::params;

use super::engine_records::{Phase, RequestSpan, Role, Scraped};
use super::{Result, Store, StoreError};

fn corrupt(what: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        message: message.into(),
    }
}

impl Store {
    /// Stores scrapes of a run in one transaction.
    pub fn save_scrapes(&mut self, run: i64, s: &[Scraped]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO engine_scrapes(run_id, target, url, role, phase, t_ns, body, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for x in s {
                let (body, error) = match &x.body {
                    Ok(b) => (Some(b.as_str()), None),
                    Err(e) => (None, Some(e.as_str())),
                };
                st.execute(params![
                    run,
                    x.target,
                    x.url,
                    x.role.as_str(),
                    x.phase.as_str(),
                    i64::try_from(x.t_ns).unwrap_or(i64::MAX),
                    body,
                    error
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A run's scrapes in time order (before, during, after).
    pub fn scrapes(&self, run: i64) -> Result<Vec<Scraped>> {
        let mut st = self.conn.prepare(
            "SELECT target, url, role, phase, t_ns, body, error FROM engine_scrapes
             WHERE run_id = ?1 ORDER BY t_ns, id",
        )?;
        let rows = st
            .query_map(params![run], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (target, url, role, phase, t_ns, body, error) in rows {
            let role = Role::parse(&role).ok_or_else(|| corrupt("scrape role", role))?;
            let phase = Phase::parse(&phase).ok_or_else(|| corrupt("scrape phase", phase))?;
            let body = match (body, error) {
                (_, Some(e)) => Err(e),
                (Some(b), None) => Ok(b),
                (None, None) => return Err(corrupt("scrape", "neither body nor error")),
            };
            out.push(Scraped {
                target,
                url,
                role,
                phase,
                t_ns: u64::try_from(t_ns).unwrap_or(0),
                body,
            });
        }
        out.sort_by_key(|s| (s.phase as u8, s.t_ns));
        Ok(out)
    }

    /// Stores request spans of a run in one transaction.
    pub fn save_request_spans(&mut self, run: i64, spans: &[RequestSpan]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO request_spans(run_id, request_id, service, host, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for s in spans {
                let payload =
                    serde_json::to_string(s).map_err(|e| corrupt("request span", e.to_string()))?;
                st.execute(params![run, s.request_id, s.service, s.host, payload])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A run's request spans, in the order stored.
    pub fn request_spans(&self, run: i64) -> Result<Vec<RequestSpan>> {
        let mut st = self
            .conn
            .prepare("SELECT payload FROM request_spans WHERE run_id = ?1 ORDER BY rowid")?;
        let rows = st
            .query_map(params![run], |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|p| serde_json::from_str(p).map_err(|e| corrupt("request span", e.to_string())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunKind;

    fn scrape(
        target: &str,
        phase: Phase,
        t_ns: u64,
        body: std::result::Result<&str, &str>,
    ) -> Scraped {
        Scraped {
            target: target.into(),
            url: format!("http://{target}/metrics"),
            role: Role::Decode,
            phase,
            t_ns,
            body: body.map(str::to_string).map_err(str::to_string),
        }
    }

    fn span(request_id: Option<&str>, ttft: f64) -> RequestSpan {
        RequestSpan {
            service: "vllm".into(),
            host: Some("h1".into()),
            request_id: request_id.map(str::to_string),
            prompt_tokens: Some(5),
            ttft_s: Some(ttft),
            ..Default::default()
        }
    }

    #[test]
    fn scrapes_and_spans_round_trip_per_run() {
        let mut st = Store::in_memory().expect("store");
        let run = st.create_run(RunKind::Load, "t", 1, "{}").expect("run");
        let other = st.create_run(RunKind::Load, "u", 2, "{}").expect("run");
        let s = vec![
            scrape("d0", Phase::Before, 100, Ok("vllm:x 1\n")),
            scrape("d1", Phase::Before, 101, Err("connect refused")),
            scrape("d0", Phase::During, 200, Ok("")),
            scrape("d0", Phase::After, 300, Ok("vllm:x 2\n")),
        ];
        st.save_scrapes(run, &s).expect("save");
        st.save_scrapes(other, &s[..1]).expect("save");
        assert_eq!(st.scrapes(run).expect("load"), s);
        assert_eq!(st.scrapes(other).expect("load").len(), 1);

        let spans = vec![span(Some("r1"), 0.25), span(None, 0.5)];
        st.save_request_spans(run, &spans).expect("save spans");
        assert_eq!(st.request_spans(run).expect("load spans"), spans);
        assert!(st.request_spans(other).expect("none").is_empty());
    }

    #[test]
    fn a_version_3_store_file_opens_migrated_and_takes_scrapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).expect("open");
            super::super::schema::migrate_to(&conn, 3).expect("v3");
            conn.execute(
                "INSERT INTO runs(kind, label, started_ns, status) VALUES ('record', 'old', 1, 'done')",
                [],
            )
            .expect("insert");
        }
        let mut st = Store::open(&path).expect("migrates");
        let run = st.runs().expect("runs")[0].id;
        st.save_scrapes(run, &[scrape("p0", Phase::After, 5, Ok("a 1\n"))])
            .expect("save");
        assert_eq!(st.scrapes(run).expect("load").len(), 1);
    }

    #[test]
    fn a_corrupt_role_is_an_error_not_a_panic() {
        let mut st = Store::in_memory().expect("store");
        let run = st.create_run(RunKind::Load, "t", 1, "{}").expect("run");
        st.save_scrapes(run, &[scrape("p0", Phase::After, 5, Ok("a 1\n"))])
            .expect("save");
        st.conn
            .execute("UPDATE engine_scrapes SET role = 'router'", [])
            .expect("update");
        assert!(matches!(
            st.scrapes(run),
            Err(StoreError::Corrupt {
                what: "scrape role",
                ..
            })
        ));
    }
}
