//! The embedded store: one SQLite file per workspace (WAL), holding runs, agents,
//! inventory snapshots, clock offsets, samples (protobuf payloads, keyed by agent
//! sequence number) and gaps. A run survives a crash with what it had: samples are
//! committed in small transactions as they arrive.

mod engine;
mod engine_records;
mod exp;
mod fabric;
mod load;
mod point;
mod recorder;
mod requests;
mod resume;
mod runs;
mod schema;

pub use engine_records::{Phase, RequestSpan, Role, Scraped};
pub use exp::{ExpPoint, ExpPointRow, ExperimentRow};
pub use fabric::ProbeOutcome;
pub use load::{LoadPoint, PointRow};
pub use point::{arrival_json, ExpPointFacts, PointConfig, ProbeVerdict};
pub use recorder::{stat_start_time, Recorder};
pub use requests::{ErrorSample, StoredRequest, ERRORS_SHOWN};
pub use resume::{check_resumable, AgentCursor, ResumedRun};
pub use runs::{RunKind, RunLinks, RunRow, INTERRUPTED};

use std::path::Path;

use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};
use servescope_proto::v1::{Gap, Inventory, Sample};

/// An offset estimate. Coordinator time = agent time − `offset_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    pub offset_ns: i64,
    /// The true offset lies within ± this of `offset_ns`.
    pub error_ns: i64,
    /// Lowest RTT seen.
    pub rtt_ns: i64,
    pub exchanges: usize,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "store schema version {found} is newer than this servescope understands ({supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("no run {0} in the store")]
    NoRun(i64),
    #[error("store {path} is full (disk or size limit): nothing more could be written; what was committed before is kept")]
    Full { path: String },
    #[error("run {run} cannot be resumed: {why}")]
    NotResumable { run: i64, why: String },
    #[error("corrupt {what} in the store: {message}")]
    Corrupt { what: &'static str, message: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A run's agent and what is known of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunAgent {
    pub agent_id: i64,
    pub address: String,
    pub hostname: String,
    pub instance: u64,
    pub offset_ns: Option<i64>,
    pub offset_error_ns: Option<i64>,
    pub rtt_ns: Option<i64>,
    pub reconnects: i64,
    pub lost: i64,
}

/// A stored sample with its agent.
#[derive(Debug, Clone)]
pub struct StoredSample {
    pub agent_id: i64,
    pub sample: Sample,
}

pub struct Store {
    conn: Connection,
    /// Where the store lives (":memory:" for an in-memory one), for errors.
    path: String,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::init(conn, path.display().to_string())
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?, ":memory:".into())
    }

    /// Caps the store file at `pages` database pages for this connection: writes
    /// past it fail as on a full disk ([`StoreError::Full`]). Tests use it to
    /// simulate a full disk without mounting one.
    pub fn limit_pages(&self, pages: u64) -> Result<()> {
        let _: i64 = self
            .conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })?;
        Ok(())
    }

    /// A write error, named [`StoreError::Full`] when the disk (or the page limit)
    /// is full.
    fn write_error(&self, e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full {
                path: self.path.clone(),
            },
            _ => StoreError::Sql(e),
        }
    }

    /// `e`, named [`StoreError::Full`] if it is a full disk.
    pub(crate) fn name_full(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Sql(e) => self.write_error(e),
            e => e,
        }
    }

    fn init(conn: Connection, path: String) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // journal_mode returns a row; in-memory databases answer "memory".
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
        schema::migrate(&conn)?;
        Ok(Store { conn, path })
    }

    /// Registers an agent instance (address + hostname + instance id); idempotent.
    pub fn agent_id(&self, address: &str, inv: &Inventory) -> Result<i64> {
        self.conn.execute(
            "INSERT OR IGNORE INTO agents(address, hostname, instance) VALUES (?1, ?2, ?3)",
            params![address, inv.hostname, inv.agent_instance as i64],
        )?;
        Ok(self.conn.query_row(
            "SELECT id FROM agents WHERE address = ?1 AND hostname = ?2 AND instance = ?3",
            params![address, inv.hostname, inv.agent_instance as i64],
            |r| r.get(0),
        )?)
    }

    pub fn add_run_agent(&self, run: i64, agent: i64) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO run_agents(run_id, agent_id) VALUES (?1, ?2)",
            params![run, agent],
        )?;
        Ok(())
    }

    pub fn save_inventory(&self, run: i64, agent: i64, inv: &Inventory) -> Result<()> {
        self.conn.execute(
            "INSERT INTO inventories(run_id, agent_id, t_ns, payload) VALUES (?1, ?2, ?3, ?4)",
            params![run, agent, inv.now_ns as i64, inv.encode_to_vec()],
        )?;
        Ok(())
    }

    /// Latest inventory of an agent in a run.
    pub fn inventory(&self, run: i64, agent: i64) -> Result<Option<Inventory>> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT payload FROM inventories WHERE run_id = ?1 AND agent_id = ?2 ORDER BY id DESC LIMIT 1",
                params![run, agent],
                |r| r.get(0),
            )
            .optional()?;
        blob.map(|b| {
            Inventory::decode(b.as_slice()).map_err(|e| StoreError::Corrupt {
                what: "inventory",
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// Records a clock-offset measurement; the run's agent row keeps the best one
    /// (lowest error bound).
    pub fn save_offset(&self, run: i64, agent: i64, t_ns: u64, o: &Offset) -> Result<()> {
        self.conn.execute(
            "INSERT INTO clock_offsets(run_id, agent_id, t_ns, offset_ns, error_ns, rtt_ns, exchanges) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![run, agent, t_ns as i64, o.offset_ns, o.error_ns, o.rtt_ns, o.exchanges as i64],
        )?;
        self.conn.execute(
            "UPDATE run_agents SET offset_ns = ?3, offset_error_ns = ?4, rtt_ns = ?5
             WHERE run_id = ?1 AND agent_id = ?2 AND (offset_error_ns IS NULL OR offset_error_ns > ?4)",
            params![run, agent, o.offset_ns, o.error_ns, o.rtt_ns],
        )?;
        Ok(())
    }

    /// Stores samples in one transaction with the agent's cursor (the last
    /// sequence accounted for); duplicates (same agent, seq) are ignored. A full
    /// disk rolls the whole batch back: samples and cursor stay consistent.
    pub fn save_samples(&mut self, run: i64, agent: i64, samples: &[Sample]) -> Result<usize> {
        self.save_samples_tx(run, agent, samples)
            .map_err(|e| self.write_error(e))
    }

    fn save_samples_tx(
        &mut self,
        run: i64,
        agent: i64,
        samples: &[Sample],
    ) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO samples(run_id, agent_id, seq, t_ns, kind, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for s in samples {
                let kind = s.data.as_ref().map(|d| d.kind() as i64).unwrap_or(0);
                n += st.execute(params![
                    run,
                    agent,
                    s.seq as i64,
                    s.t_ns as i64,
                    kind,
                    s.encode_to_vec()
                ])?;
            }
        }
        if let Some(last) = samples.iter().map(|s| s.seq).max() {
            resume::advance_cursor(&tx, run, agent, last)?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Stores a gap and moves the agent's cursor past what it lost, in one
    /// transaction (a resume then does not count the loss twice).
    pub fn save_gap(&mut self, run: i64, agent: i64, t_ns: u64, g: &Gap) -> Result<()> {
        let r = (|| {
            let tx = self.conn.transaction()?;
            tx.execute(
                "INSERT INTO gaps(run_id, agent_id, t_ns, requested_from_seq, resumed_at_seq, lost) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run, agent, t_ns as i64, g.requested_from_seq as i64, g.resumed_at_seq as i64, g.lost as i64],
            )?;
            if g.resumed_at_seq > 0 {
                resume::advance_cursor(&tx, run, agent, g.resumed_at_seq - 1)?;
            }
            tx.commit()
        })();
        r.map_err(|e| self.write_error(e))
    }

    pub fn add_reconnect(&self, run: i64, agent: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE run_agents SET reconnects = reconnects + 1 WHERE run_id = ?1 AND agent_id = ?2",
            params![run, agent],
        )?;
        Ok(())
    }

    /// Highest stored sequence number of an agent in a run.
    pub fn last_seq(&self, run: i64, agent: i64) -> Result<Option<u64>> {
        let v: Option<i64> = self.conn.query_row(
            "SELECT MAX(seq) FROM samples WHERE run_id = ?1 AND agent_id = ?2",
            params![run, agent],
            |r| r.get(0),
        )?;
        Ok(v.map(|x| x as u64))
    }

    pub fn run_agents(&self, run: i64) -> Result<Vec<RunAgent>> {
        let mut st = self.conn.prepare(
            "SELECT a.id, a.address, a.hostname, a.instance, ra.offset_ns, ra.offset_error_ns, ra.rtt_ns, ra.reconnects,
                    (SELECT COALESCE(SUM(lost), 0) FROM gaps g WHERE g.run_id = ra.run_id AND g.agent_id = a.id)
             FROM run_agents ra JOIN agents a ON a.id = ra.agent_id WHERE ra.run_id = ?1 ORDER BY a.id",
        )?;
        let rows = st.query_map([run], |r| {
            Ok(RunAgent {
                agent_id: r.get(0)?,
                address: r.get(1)?,
                hostname: r.get(2)?,
                instance: r.get::<_, i64>(3)? as u64,
                offset_ns: r.get(4)?,
                offset_error_ns: r.get(5)?,
                rtt_ns: r.get(6)?,
                reconnects: r.get(7)?,
                lost: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Calls `f` for each stored sample of a run, in (agent, seq) order, without
    /// loading the run into memory.
    pub fn for_each_sample(
        &self,
        run: i64,
        mut f: impl FnMut(StoredSample) -> Result<()>,
    ) -> Result<()> {
        let mut st = self.conn.prepare(
            "SELECT agent_id, payload FROM samples WHERE run_id = ?1 ORDER BY agent_id, seq",
        )?;
        let mut rows = st.query([run])?;
        while let Some(r) = rows.next()? {
            let agent_id: i64 = r.get(0)?;
            let blob: Vec<u8> = r.get(1)?;
            let sample = Sample::decode(blob.as_slice()).map_err(|e| StoreError::Corrupt {
                what: "sample",
                message: e.to_string(),
            })?;
            f(StoredSample { agent_id, sample })?;
        }
        Ok(())
    }

    /// Sequence numbers stored for an agent in a run (tests, integrity checks).
    pub fn seqs(&self, run: i64, agent: i64) -> Result<Vec<u64>> {
        let mut st = self
            .conn
            .prepare("SELECT seq FROM samples WHERE run_id = ?1 AND agent_id = ?2 ORDER BY seq")?;
        let rows = st.query_map(params![run, agent], |r| r.get::<_, i64>(0))?;
        Ok(rows
            .map(|r| r.map(|v| v as u64))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Number of samples per kind in a run.
    pub fn kind_counts(&self, run: i64) -> Result<Vec<(i64, i64)>> {
        let mut st = self.conn.prepare(
            "SELECT kind, COUNT(*) FROM samples WHERE run_id = ?1 GROUP BY kind ORDER BY kind",
        )?;
        let rows = st.query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::{sample, HostSample};

    #[test]
    fn round_trip_run_agent_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut st = Store::open(&path).unwrap();
        let run = st.create_run(RunKind::Record, "t", 1, "{}").unwrap();
        let inv = Inventory {
            hostname: "h".into(),
            agent_instance: 42,
            now_ns: 5,
            ..Default::default()
        };
        let a = st.agent_id("127.0.0.1:1", &inv).unwrap();
        assert_eq!(st.agent_id("127.0.0.1:1", &inv).unwrap(), a);
        st.add_run_agent(run, a).unwrap();
        st.save_inventory(run, a, &inv).unwrap();
        let ss: Vec<Sample> = (1..=5)
            .map(|i| Sample {
                seq: i,
                t_ns: i * 10,
                collect_ns: 0,
                data: Some(sample::Data::Host(HostSample {
                    load1: i as f64,
                    ..Default::default()
                })),
            })
            .collect();
        assert_eq!(st.save_samples(run, a, &ss).unwrap(), 5);
        assert_eq!(
            st.save_samples(run, a, &ss[3..]).unwrap(),
            0,
            "duplicates ignored"
        );
        assert_eq!(st.last_seq(run, a).unwrap(), Some(5));
        st.save_offset(
            run,
            a,
            1,
            &Offset {
                offset_ns: 7,
                error_ns: 100,
                rtt_ns: 200,
                exchanges: 8,
            },
        )
        .unwrap();
        st.save_offset(
            run,
            a,
            2,
            &Offset {
                offset_ns: 9,
                error_ns: 500,
                rtt_ns: 900,
                exchanges: 8,
            },
        )
        .unwrap();
        st.save_gap(
            run,
            a,
            3,
            &Gap {
                requested_from_seq: 1,
                resumed_at_seq: 4,
                lost: 3,
            },
        )
        .unwrap();
        st.finish_run(run, 99, "done").unwrap();
        drop(st);

        let st = Store::open(&path).unwrap();
        let r = st.run(run).unwrap();
        assert_eq!((r.samples, r.agents, r.status.as_str()), (5, 1, "done"));
        let ag = &st.run_agents(run).unwrap()[0];
        assert_eq!(
            (ag.offset_ns, ag.offset_error_ns, ag.lost),
            (Some(7), Some(100), 3)
        );
        assert_eq!(st.inventory(run, a).unwrap().unwrap().hostname, "h");
        let mut n = 0;
        st.for_each_sample(run, |s| {
            n += 1;
            assert_eq!(s.agent_id, a);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 5);
        assert_eq!(st.seqs(run, a).unwrap(), vec![1, 2, 3, 4, 5]);
        assert!(matches!(st.run(999), Err(StoreError::NoRun(999))));
    }
}
