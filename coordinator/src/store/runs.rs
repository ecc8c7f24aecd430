//! Runs: their kind (fixed when the run is created), their rows, their arguments
//! (JSON facts about how the run was made) and their links to other runs and to
//! experiments (typed columns).

use rusqlite::{params, OptionalExtension};

use super::{Result, Store, StoreError};
use crate::store::Recorder;

/// The status shown for a run still marked running whose recording process is
/// gone (it crashed or was killed); `record --resume` takes it back to running.
pub const INTERRUPTED: &str = "interrupted";

/// What made a run. Stored as the text [`RunKind::as_str`] gives (the strings of
/// every earlier version), fixed when the run is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// Agents' telemetry (`servescope record`, and the telemetry of pd and exp runs).
    Record,
    /// A load sweep (`servescope load`, the demo).
    Load,
    /// A load sweep through a P/D proxy with engine scrapes and spans (`pd run`).
    Pd,
    /// One measured point of an experiment (`exp run`).
    Exp,
    /// One deployment's startup as seen by an experiment.
    ExpStartup,
    /// An experiment's fabric preflight findings.
    FabricCheck,
    /// Live startup trials (`startup run`).
    Startup,
    /// One fabric probe (`fabric probe`).
    Fabric,
    /// A fabric probe matrix (`fabric matrix`).
    FabricMatrix,
}

impl RunKind {
    pub const ALL: [RunKind; 9] = [
        RunKind::Record,
        RunKind::Load,
        RunKind::Pd,
        RunKind::Exp,
        RunKind::ExpStartup,
        RunKind::FabricCheck,
        RunKind::Startup,
        RunKind::Fabric,
        RunKind::FabricMatrix,
    ];

    /// The stored (and printed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Record => "record",
            RunKind::Load => "load",
            RunKind::Pd => "pd",
            RunKind::Exp => "exp",
            RunKind::ExpStartup => "exp-startup",
            RunKind::FabricCheck => "fabric-check",
            RunKind::Startup => "startup",
            RunKind::Fabric => "fabric",
            RunKind::FabricMatrix => "fabric-matrix",
        }
    }

    pub fn parse(s: &str) -> Option<RunKind> {
        RunKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A run's summary row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub kind: RunKind,
    pub label: String,
    pub started_ns: i64,
    pub ended_ns: Option<i64>,
    pub status: String,
    pub agents: i64,
    pub samples: i64,
    /// Measured (non-warm-up) requests of a load run.
    pub requests: i64,
    /// The process that records (or recorded) the run, where known.
    pub recorder: Option<Recorder>,
}

/// A run's links to other runs and to its experiment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLinks {
    /// The `record` run holding the agents' telemetry of this run's minutes.
    pub telemetry_run: Option<i64>,
    /// A fabric probe run whose bandwidth is this run's KV path capacity.
    pub fabric_run: Option<i64>,
    /// The experiment this run belongs to.
    pub experiment: Option<i64>,
}

impl Store {
    /// Starts a run without links; returns its id.
    pub fn create_run(
        &self,
        kind: RunKind,
        label: &str,
        started_ns: u64,
        args_json: &str,
    ) -> Result<i64> {
        self.create_linked_run(kind, label, started_ns, args_json, &RunLinks::default())
    }

    /// Starts a run with its links; returns its id.
    pub fn create_linked_run(
        &self,
        kind: RunKind,
        label: &str,
        started_ns: u64,
        args_json: &str,
        links: &RunLinks,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs(kind, label, started_ns, status, args, telemetry_run, fabric_run, experiment_id)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7)",
            params![
                kind.as_str(),
                label,
                started_ns as i64,
                args_json,
                links.telemetry_run,
                links.fabric_run,
                links.experiment
            ],
        )?;
        let run = self.conn.last_insert_rowid();
        self.set_recorder(run, &Recorder::this_process())?;
        Ok(run)
    }

    pub fn finish_run(&self, run: i64, ended_ns: u64, status: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET ended_ns = ?2, status = ?3 WHERE id = ?1",
            params![run, ended_ns as i64, status],
        )?;
        Ok(())
    }

    pub fn runs(&self) -> Result<Vec<RunRow>> {
        let mut st = self.conn.prepare(
            "SELECT r.id, r.kind, r.label, r.started_ns, r.ended_ns, r.status,
                    (SELECT COUNT(*) FROM run_agents a WHERE a.run_id = r.id),
                    (SELECT COUNT(*) FROM samples s WHERE s.run_id = r.id),
                    (SELECT COUNT(*) FROM requests q JOIN load_points p ON q.point_id = p.id
                      WHERE p.run_id = r.id AND q.warmup = 0),
                    r.recorder_host, r.recorder_boot, r.recorder_pid, r.recorder_start
             FROM runs r ORDER BY r.id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                RunRow {
                    id: r.get(0)?,
                    kind: RunKind::Record,
                    label: r.get(2)?,
                    started_ns: r.get(3)?,
                    ended_ns: r.get(4)?,
                    status: r.get(5)?,
                    agents: r.get(6)?,
                    samples: r.get(7)?,
                    requests: r.get(8)?,
                    recorder: match (r.get::<_, Option<String>>(9)?, r.get::<_, Option<i64>>(11)?) {
                        (Some(host), Some(pid)) => Some(Recorder {
                            host,
                            boot: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                            pid: u32::try_from(pid).unwrap_or(0),
                            start: r.get::<_, Option<i64>>(12)?.unwrap_or(0) as u64,
                        }),
                        _ => None,
                    },
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, mut run) = row?;
            run.kind = RunKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                what: "run kind",
                message: format!("run {} has unknown kind {kind:?}", run.id),
            })?;
            if run.status == "running"
                && run.recorder.as_ref().and_then(Recorder::alive) == Some(false)
            {
                run.status = INTERRUPTED.to_string();
            }
            out.push(run);
        }
        Ok(out)
    }

    pub fn run(&self, run: i64) -> Result<RunRow> {
        self.runs()?
            .into_iter()
            .find(|r| r.id == run)
            .ok_or(StoreError::NoRun(run))
    }

    /// A run's arguments (JSON).
    pub fn run_args(&self, run: i64) -> Result<serde_json::Value> {
        let s: String = self
            .conn
            .query_row("SELECT args FROM runs WHERE id = ?1", [run], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NoRun(run))?;
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
            what: "run args",
            message: e.to_string(),
        })
    }

    /// Adds `key` to a run's arguments: what became known only when it ended.
    pub fn add_run_arg(&self, run: i64, key: &str, value: &serde_json::Value) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE runs SET args = json_set(args, ?2, json(?3)) WHERE id = ?1",
            params![run, format!("$.\"{key}\""), value.to_string()],
        )?;
        if n == 0 {
            return Err(StoreError::NoRun(run));
        }
        Ok(())
    }

    /// A run's links.
    pub fn run_links(&self, run: i64) -> Result<RunLinks> {
        self.conn
            .query_row(
                "SELECT telemetry_run, fabric_run, experiment_id FROM runs WHERE id = ?1",
                [run],
                |r| {
                    Ok(RunLinks {
                        telemetry_run: r.get(0)?,
                        fabric_run: r.get(1)?,
                        experiment: r.get(2)?,
                    })
                },
            )
            .optional()?
            .ok_or(StoreError::NoRun(run))
    }

    /// Links a run to the `record` run made of its agents' telemetry after it.
    pub fn link_telemetry(&self, run: i64, telemetry_run: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET telemetry_run = ?2 WHERE id = ?1",
            params![run, telemetry_run],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_stored_names() {
        for k in RunKind::ALL {
            assert_eq!(RunKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(RunKind::parse("fabric-matrix"), Some(RunKind::FabricMatrix));
        assert_eq!(RunKind::parse("nope"), None);
    }

    #[test]
    fn links_and_late_args_leave_the_kind_alone() {
        let st = Store::in_memory().expect("store");
        let t = st.create_run(RunKind::Record, "t", 1, "{}").expect("run");
        let links = RunLinks {
            fabric_run: Some(7),
            ..Default::default()
        };
        let pd = st
            .create_linked_run(RunKind::Pd, "p", 2, r#"{"endpoint":"x"}"#, &links)
            .expect("run");
        st.link_telemetry(pd, t).expect("link");
        st.add_run_arg(pd, "pd", &serde_json::json!({"decode": ["d"]}))
            .expect("arg");
        assert_eq!(st.run(pd).expect("row").kind, RunKind::Pd);
        assert_eq!(
            st.run_links(pd).expect("links"),
            RunLinks {
                telemetry_run: Some(t),
                fabric_run: Some(7),
                experiment: None
            }
        );
        let args = st.run_args(pd).expect("args");
        assert_eq!(args["endpoint"], "x");
        assert_eq!(args["pd"]["decode"][0], "d");
        assert!(matches!(st.run_args(99), Err(StoreError::NoRun(99))));
        assert!(matches!(
            st.add_run_arg(99, "k", &serde_json::json!(1)),
            Err(StoreError::NoRun(99))
        ));
    }
}
