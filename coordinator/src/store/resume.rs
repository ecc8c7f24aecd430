//! Resuming recordings from the store: per run and agent the last sequence
//! accounted for (its cursor, moved in the transaction of the samples or gap that
//! account for it), agent restarts within a run, and taking an interrupted run back
//! to running under a new recorder.

use rusqlite::{params, Transaction};
use servescope_proto::v1::Gap;

use super::{Result, RunKind, RunRow, Store, StoreError};
use crate::store::Recorder;

/// Where a run's recording of one agent instance stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCursor {
    pub agent_id: i64,
    pub address: String,
    pub hostname: String,
    pub instance: u64,
    /// The last sequence stored or counted lost; None if nothing arrived.
    pub last_seq: Option<u64>,
}

/// An interrupted run taken back to running.
#[derive(Debug, Clone)]
pub struct ResumedRun {
    pub run: i64,
    pub started_ns: i64,
    pub args: serde_json::Value,
    /// The newest agent instance of each address (an agent restarted within the
    /// run has several; the recording goes on with the last).
    pub cursors: Vec<AgentCursor>,
}

/// Moves an agent's cursor forward to `last` (never back).
pub(super) fn advance_cursor(
    tx: &Transaction<'_>,
    run: i64,
    agent: i64,
    last: u64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO agent_cursors(run_id, agent_id, last_seq) VALUES (?1, ?2, ?3)
         ON CONFLICT(run_id, agent_id) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)",
        params![run, agent, last as i64],
    )?;
    Ok(())
}

/// Whether `row` may be resumed: an interrupted `record` run.
pub fn check_resumable(row: &RunRow) -> Result<()> {
    check_resumable_as(row, &[RunKind::Record])
}

/// Whether `row` may be resumed as one of `kinds`: an interrupted run of that kind.
fn check_resumable_as(row: &RunRow, kinds: &[RunKind]) -> Result<()> {
    let refuse = |why: String| StoreError::NotResumable { run: row.id, why };
    if !kinds.contains(&row.kind) {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        return Err(refuse(format!(
            "it is a {} run; only {} runs resume this way",
            row.kind,
            names.join("/")
        )));
    }
    if row.status != super::runs::INTERRUPTED {
        let why = match (row.status.as_str(), &row.recorder) {
            ("running", Some(r)) => format!(
                "it is still running (recorder pid {} on {}; this machine cannot tell it ended)",
                r.pid, r.host
            ),
            (s, _) => format!("it is {s}, not interrupted"),
        };
        return Err(refuse(why));
    }
    Ok(())
}

/// What an interrupted load sweep already stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepResume {
    /// (point, trial) pairs stored whole (a point commits with its requests).
    pub done: Vec<(i64, i64)>,
    /// One past the highest request index the run used.
    pub next_index: usize,
}

impl Store {
    /// The cursors of a run's agents, in agent order.
    pub fn cursors(&self, run: i64) -> Result<Vec<AgentCursor>> {
        let mut st = self.conn.prepare(
            "SELECT a.id, a.address, a.hostname, a.instance, c.last_seq
             FROM run_agents ra JOIN agents a ON a.id = ra.agent_id
             LEFT JOIN agent_cursors c ON c.run_id = ra.run_id AND c.agent_id = a.id
             WHERE ra.run_id = ?1 ORDER BY a.id",
        )?;
        let rows = st.query_map([run], |r| {
            Ok(AgentCursor {
                agent_id: r.get(0)?,
                address: r.get(1)?,
                hostname: r.get(2)?,
                instance: r.get::<_, i64>(3)? as u64,
                last_seq: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// An agent's gaps in a run, in order.
    pub fn gaps(&self, run: i64, agent: i64) -> Result<Vec<Gap>> {
        let mut st = self.conn.prepare(
            "SELECT requested_from_seq, resumed_at_seq, lost FROM gaps
             WHERE run_id = ?1 AND agent_id = ?2 ORDER BY rowid",
        )?;
        let rows = st.query_map(params![run, agent], |r| {
            Ok(Gap {
                requested_from_seq: r.get::<_, i64>(0)? as u64,
                resumed_at_seq: r.get::<_, i64>(1)? as u64,
                lost: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Records that the agent behind `before` restarted as `after` (a new
    /// instance whose sequences start over).
    pub fn save_restart(&self, run: i64, before: i64, after: i64, t_ns: u64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO agent_restarts(run_id, before_agent_id, after_agent_id, t_ns) VALUES (?1, ?2, ?3, ?4)",
                params![run, before, after, t_ns as i64],
            )
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// A run's agent restarts: (agent row before, agent row after), in order.
    pub fn restarts(&self, run: i64) -> Result<Vec<(i64, i64)>> {
        let mut st = self.conn.prepare(
            "SELECT before_agent_id, after_agent_id FROM agent_restarts WHERE run_id = ?1 ORDER BY rowid",
        )?;
        let rows = st.query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Stores which process records `run`.
    pub(super) fn set_recorder(&self, run: i64, who: &Recorder) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET recorder_host = ?2, recorder_boot = ?3, recorder_pid = ?4, recorder_start = ?5 WHERE id = ?1",
            params![run, who.host, who.boot, who.pid, who.start as i64],
        )?;
        Ok(())
    }

    /// Takes an interrupted run of one of `kinds` back to running under this
    /// process. Taken over only from the dead recorder seen: of two resumes at
    /// once, one wins.
    fn take_over(&self, run: i64, kinds: &[RunKind]) -> Result<RunRow> {
        let row = self.run(run)?;
        check_resumable_as(&row, kinds)?;
        let who = Recorder::this_process();
        let old = row.recorder.as_ref();
        let n = self.conn.execute(
            "UPDATE runs SET status = 'running', ended_ns = NULL,
                    recorder_host = ?2, recorder_boot = ?3, recorder_pid = ?4, recorder_start = ?5
             WHERE id = ?1 AND recorder_pid IS ?6 AND recorder_start IS ?7",
            params![
                run,
                who.host,
                who.boot,
                who.pid,
                who.start as i64,
                old.map(|r| r.pid),
                old.map(|r| r.start as i64)
            ],
        )?;
        if n != 1 {
            return Err(StoreError::NotResumable {
                run,
                why: "another process resumed it first".into(),
            });
        }
        Ok(row)
    }

    /// Takes an interrupted load sweep (`load` or `pd run`) of kind `kind` back to
    /// running and returns what it already stored.
    pub fn resume_sweep(&self, run: i64, kind: RunKind) -> Result<SweepResume> {
        self.take_over(run, &[kind])?;
        let mut st = self.conn.prepare(
            "SELECT point, trial FROM load_points WHERE run_id = ?1 ORDER BY point, trial",
        )?;
        let done = st
            .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        let max: Option<i64> = self.conn.query_row(
            "SELECT MAX(q.idx) FROM requests q JOIN load_points p ON q.point_id = p.id WHERE p.run_id = ?1",
            [run],
            |r| r.get(0),
        )?;
        Ok(SweepResume {
            done,
            next_index: max.map_or(0, |m| usize::try_from(m + 1).unwrap_or(0)),
        })
    }

    /// Takes an interrupted `record` run back to running under this process and
    /// returns where each agent stands. Refused for other kinds, for finished runs
    /// and for runs whose recorder may still run.
    pub fn resume_run(&self, run: i64) -> Result<ResumedRun> {
        let row = self.take_over(run, &[RunKind::Record])?;
        let mut cursors: Vec<AgentCursor> = Vec::new();
        for c in self.cursors(run)? {
            match cursors.iter_mut().find(|x| x.address == c.address) {
                Some(x) => *x = c,
                None => cursors.push(c),
            }
        }
        Ok(ResumedRun {
            run,
            started_ns: row.started_ns,
            args: self.run_args(run)?,
            cursors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::{Inventory, Sample};

    fn samples(seqs: std::ops::RangeInclusive<u64>) -> Vec<Sample> {
        seqs.map(|seq| Sample {
            seq,
            ..Default::default()
        })
        .collect()
    }

    fn mark_dead(st: &Store, run: i64) {
        st.conn
            .execute(
                "UPDATE runs SET recorder_pid = 0, recorder_start = 1 WHERE id = ?1",
                [run],
            )
            .expect("dead recorder");
    }

    #[test]
    fn cursor_follows_samples_and_gaps_and_never_goes_back() {
        let mut st = Store::in_memory().expect("store");
        let run = st.create_run(RunKind::Record, "r", 1, "{}").expect("run");
        let a = st.agent_id("a:1", &Inventory::default()).expect("agent id");
        st.add_run_agent(run, a).expect("run agent");
        assert_eq!(st.cursors(run).expect("cursors")[0].last_seq, None);
        st.save_samples(run, a, &samples(5..=9)).expect("save");
        st.save_samples(run, a, &samples(3..=4)).expect("late");
        assert_eq!(st.cursors(run).expect("cursors")[0].last_seq, Some(9));
        let g = Gap {
            requested_from_seq: 10,
            resumed_at_seq: 20,
            lost: 10,
        };
        st.save_gap(run, a, 0, &g).expect("gap");
        assert_eq!(st.cursors(run).expect("cursors")[0].last_seq, Some(19));
        assert_eq!(st.gaps(run, a).expect("gaps"), vec![g]);
    }

    #[test]
    fn only_an_interrupted_record_run_resumes_with_its_newest_instances() {
        let mut st = Store::in_memory().expect("store");
        let run = st
            .create_run(RunKind::Record, "r", 1, r#"{"agents":["a:1"]}"#)
            .expect("run");
        assert_eq!(st.run(run).expect("row").status, "running", "we record it");
        let err = st.resume_run(run).expect_err("alive");
        assert!(err.to_string().contains("still running"), "{err}");
        mark_dead(&st, run);
        assert_eq!(st.run(run).expect("row").status, "interrupted");
        let inv = |instance| Inventory {
            hostname: "h".into(),
            agent_instance: instance,
            ..Default::default()
        };
        let old = st.agent_id("a:1", &inv(1)).expect("agent");
        let new = st.agent_id("a:1", &inv(2)).expect("agent");
        for id in [old, new] {
            st.add_run_agent(run, id).expect("run agent");
        }
        st.save_samples(run, old, &samples(1..=50)).expect("old");
        st.save_restart(run, old, new, 5).expect("restart");
        st.save_samples(run, new, &samples(1..=7)).expect("new");
        let r = st.resume_run(run).expect("resumes");
        assert_eq!(r.args["agents"][0], "a:1");
        assert_eq!(r.cursors.len(), 1);
        assert_eq!((r.cursors[0].instance, r.cursors[0].last_seq), (2, Some(7)));
        assert_eq!(st.run(run).expect("row").status, "running");
        assert_eq!(st.restarts(run).expect("restarts"), vec![(old, new)]);
        st.finish_run(run, 9, "done").expect("finish");
        let err = st.resume_run(run).expect_err("done");
        assert!(err.to_string().contains("it is done"), "{err}");
        let load = st.create_run(RunKind::Load, "l", 1, "{}").expect("run");
        mark_dead(&st, load);
        assert!(st
            .resume_run(load)
            .expect_err("load")
            .to_string()
            .contains("only record runs"));
    }

    #[test]
    fn a_full_store_names_its_path_and_keeps_what_was_committed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("full.db");
        let mut st = Store::open(&path).expect("store");
        let run = st.create_run(RunKind::Record, "r", 1, "{}").expect("run");
        let a = st.agent_id("a:1", &Inventory::default()).expect("agent id");
        st.add_run_agent(run, a).expect("run agent");
        let pages: i64 = st
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("pages");
        st.limit_pages(pages as u64 + 4).expect("limit");
        let big = |seqs: std::ops::RangeInclusive<u64>| -> Vec<Sample> {
            seqs.map(|seq| Sample {
                seq,
                data: Some(servescope_proto::v1::sample::Data::Event(
                    servescope_proto::v1::Event {
                        message: "x".repeat(2000),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })
            .collect()
        };
        let mut committed = 0u64;
        let err = loop {
            match st.save_samples(run, a, &big(committed + 1..=committed + 2)) {
                Ok(_) => committed += 2,
                Err(e) => break e,
            }
            assert!(committed < 1000, "the limit never bit");
        };
        assert!(committed > 0, "something was committed first");
        assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        drop(st);
        let st = Store::open(&path).expect("reopen");
        let seqs = st.seqs(run, a).expect("seqs");
        assert_eq!(seqs, (1..=committed).collect::<Vec<_>>());
        assert_eq!(
            st.cursors(run).expect("cursors")[0].last_seq,
            Some(committed)
        );
    }
}
