//! Watching the store while `servescope record` writes it (end-to-end lag), and
//! reading it afterwards (what was stored, what was lost).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use servescope_coordinator::Store;
use servescope_proto::now_ns;

use crate::values::metric_values;

/// Lag of every sample seen committed: the time it was first visible to a reader
/// of the store minus the time the agent produced it (one clock: same host).
pub struct Lags {
    pub ns: Vec<u64>,
    /// Interval between looks: the lag's resolution.
    pub poll: Duration,
}

/// Polls the store every `poll` until `stop`; lags of samples produced at or
/// after `from_ns`.
pub fn watch(db: &Path, poll: Duration, from_ns: u64, stop: Arc<AtomicBool>) -> Lags {
    let mut ns = Vec::new();
    let mut last = HashMap::new();
    let mut conn: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(poll);
        if conn.is_none() {
            conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok();
        }
        let Some(c) = &conn else { continue };
        // Before `record` has made the schema, the query fails: look again later.
        let _ = read_new(c, &mut last, from_ns, &mut ns);
    }
    Lags { ns, poll }
}

/// Samples committed since the last look, per (run, agent) after the highest
/// sequence number seen (the table is keyed so; it has no rowid).
fn read_new(
    c: &Connection,
    last: &mut HashMap<(i64, i64), i64>,
    from_ns: u64,
    out: &mut Vec<u64>,
) -> rusqlite::Result<()> {
    let mut pairs = c.prepare_cached("SELECT run_id, agent_id FROM run_agents")?;
    let keys = pairs
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = c.prepare_cached(
        "SELECT seq, t_ns FROM samples WHERE run_id = ?1 AND agent_id = ?2 AND seq > ?3 ORDER BY seq",
    )?;
    for k in keys {
        let after = last.get(&k).copied().unwrap_or(-1);
        let mut rows = st.query([k.0, k.1, after])?;
        let now = now_ns();
        while let Some(r) = rows.next()? {
            last.insert(k, r.get(0)?);
            let t = r.get::<_, i64>(1)? as u64;
            if t >= from_ns {
                out.push(now.saturating_sub(t));
            }
        }
    }
    Ok(())
}

/// What a finished recording stored.
pub struct Stored {
    pub agents: usize,
    pub rows: u64,
    pub values: u64,
    /// Rows and values of samples produced inside the window.
    pub window_rows: u64,
    pub window_values: u64,
    /// Samples the coordinator counted as lost (gaps) plus holes in each agent's
    /// stored sequence range.
    pub lost: u64,
    /// Store file plus its write-ahead log, bytes.
    pub bytes: u64,
}

/// Reads the only run of `db`; the window is `[from_ns, to_ns)` of produce time.
pub fn stored(db: &Path, from_ns: u64, to_ns: u64) -> anyhow::Result<Stored> {
    let store = Store::open(db).with_context(|| format!("opening {}", db.display()))?;
    let runs = store.runs().context("listing runs")?;
    let run = runs.first().context("the store holds no run")?.id;
    let agents = store.run_agents(run)?;
    let mut lost: u64 = agents.iter().map(|a| a.lost.max(0) as u64).sum();
    for a in &agents {
        let seqs = store.seqs(run, a.agent_id)?;
        lost += seqs
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]).saturating_sub(1))
            .sum::<u64>();
    }
    let (mut rows, mut values, mut window_rows, mut window_values) = (0, 0, 0, 0);
    store.for_each_sample(run, |s| {
        let v = metric_values(&s.sample);
        rows += 1;
        values += v;
        if (from_ns..to_ns).contains(&s.sample.t_ns) {
            window_rows += 1;
            window_values += v;
        }
        Ok(())
    })?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = db.with_extension("db-wal");
    Ok(Stored {
        agents: agents.len(),
        rows,
        values,
        window_rows,
        window_values,
        lost,
        bytes: size(db) + size(&wal),
    })
}

/// The `q`-quantile of `v` (sorted in place); 0 for none.
pub fn quantile(v: &mut [u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}
