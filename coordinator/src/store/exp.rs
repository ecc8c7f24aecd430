//! Experiments (`servescope exp run FILE`): one row per experiment name, one per
//! measured point. A point's run, its requests and its experiment row are written in
//! one transaction: a point interrupted before its commit leaves nothing, so a
//! resumed experiment re-runs it whole and never stores a request twice.

use rusqlite::{params, OptionalExtension};

use super::load::{save_point_tx, LoadPoint};
use super::{Result, RunKind, Store};

/// A stored experiment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExperimentRow {
    pub id: i64,
    pub name: String,
    /// The experiment file's text when it was first run.
    pub file: String,
    pub created_ns: i64,
    pub status: String,
    pub points: i64,
    pub failed: i64,
}

/// A stored point of an experiment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpPointRow {
    pub key: String,
    pub deployment: String,
    pub run_id: i64,
    pub point_id: i64,
    pub status: String,
    pub detail: Option<String>,
}

/// One measured point to store, in a run of its own labelled as the point.
pub struct ExpPoint<'a> {
    pub key: &'a str,
    pub deployment: &'a str,
    pub run_args: &'a serde_json::Value,
    pub point: LoadPoint<'a>,
    /// `done` or `failed`.
    pub status: &'a str,
    pub detail: Option<&'a str>,
}

impl Store {
    pub fn experiments(&self) -> Result<Vec<ExperimentRow>> {
        let mut st = self.conn.prepare(
            "SELECT e.id, e.name, e.file, e.created_ns, e.status,
                    (SELECT COUNT(*) FROM exp_points p WHERE p.exp_id = e.id),
                    (SELECT COUNT(*) FROM exp_points p WHERE p.exp_id = e.id AND p.status != 'done')
             FROM experiments e ORDER BY e.id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(ExperimentRow {
                id: r.get(0)?,
                name: r.get(1)?,
                file: r.get(2)?,
                created_ns: r.get(3)?,
                status: r.get(4)?,
                points: r.get(5)?,
                failed: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn experiment(&self, name: &str) -> Result<Option<ExperimentRow>> {
        Ok(self.experiments()?.into_iter().find(|e| e.name == name))
    }

    /// The experiment named `name`, created with `file` when new.
    pub fn open_experiment(&self, name: &str, file: &str, now_ns: u64) -> Result<i64> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM experiments WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(id) = id {
            return Ok(id);
        }
        self.conn.execute(
            "INSERT INTO experiments(name, file, created_ns, status) VALUES (?1, ?2, ?3, 'running')",
            params![name, file, now_ns as i64],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn set_experiment_status(&self, id: i64, status: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE experiments SET status = ?2 WHERE id = ?1",
            params![id, status],
        )?;
        Ok(())
    }

    pub fn exp_points(&self, exp: i64) -> Result<Vec<ExpPointRow>> {
        let mut st = self.conn.prepare(
            "SELECT key, deployment, run_id, point_id, status, detail FROM exp_points WHERE exp_id = ?1
             ORDER BY run_id",
        )?;
        let rows = st.query_map([exp], |r| {
            Ok(ExpPointRow {
                key: r.get(0)?,
                deployment: r.get(1)?,
                run_id: r.get(2)?,
                point_id: r.get(3)?,
                status: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Stores a point, its run and requests, and its experiment row, atomically.
    pub fn save_exp_point(&mut self, exp: i64, p: &ExpPoint<'_>) -> Result<(i64, i64)> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO runs(kind, label, started_ns, ended_ns, status, args, experiment_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                RunKind::Exp.as_str(),
                p.point.label,
                p.point.span_ns.0 as i64,
                p.point.span_ns.1 as i64,
                p.status,
                p.run_args.to_string(),
                exp
            ],
        )?;
        let run = tx.last_insert_rowid();
        let point = save_point_tx(&tx, run, &p.point)?;
        tx.execute(
            "INSERT INTO exp_points(exp_id, key, deployment, run_id, point_id, status, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![exp, p.key, p.deployment, run, point, p.status, p.detail],
        )?;
        tx.commit()?;
        Ok((run, point))
    }
}
