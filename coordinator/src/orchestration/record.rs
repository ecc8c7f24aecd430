//! Recording: sessions to several agents for a duration, into one run of the store.
//! One writer thread owns the SQLite connection; sessions hand it batches. Each
//! batch commits with the agent's cursor, so a recording whose process died resumes
//! from the store ([`resume_config`]): what the agents still hold arrives, what they
//! no longer hold is stored as a counted gap, and an agent that restarted meanwhile
//! is recorded as a restart (a new agent row), never glued to the old sequence.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use servescope_proto::now_ns;
use servescope_proto::v1::Inventory;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::orchestration::connect::AgentEndpoint;
use crate::orchestration::session::{self, SessionConfig, SessionEvent};
use crate::store::Offset;
use crate::store::{AgentCursor, RunKind, Store, StoreError};

/// What to record.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub agents: Vec<AgentEndpoint>,
    pub duration: Duration,
    pub db: PathBuf,
    pub label: String,
    /// Start from the oldest sample each agent still holds instead of from now.
    pub include_history: bool,
    pub kinds: Vec<i32>,
    /// Reconnect backoff bounds (tests shorten them).
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Continue this interrupted run from its stored cursors instead of starting
    /// a new one.
    pub resume: Option<i64>,
    /// Caps the store file at this many pages ([`Store::limit_pages`]): a full
    /// disk, simulated.
    pub max_store_pages: Option<u64>,
}

impl RecordConfig {
    pub fn new(agents: Vec<AgentEndpoint>, duration: Duration, db: PathBuf) -> Self {
        RecordConfig {
            agents,
            duration,
            db,
            label: String::new(),
            include_history: false,
            kinds: Vec::new(),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            resume: None,
            max_store_pages: None,
        }
    }
}

/// The least a resumed recording lasts: long enough to take what the agents hold
/// when the planned end has passed.
pub const RESUME_CATCH_UP: Duration = Duration::from_secs(2);

/// The recording that continues run `run` of the store at `db`: its agents (their
/// addresses as stored, made endpoints by `endpoint`), for what is left of its
/// planned duration (at least [`RESUME_CATCH_UP`]). Whether it may resume is
/// checked when it starts.
pub fn resume_config(
    db: &Path,
    run: i64,
    endpoint: impl Fn(&str) -> AgentEndpoint,
) -> Result<RecordConfig, RecordError> {
    let store = Store::open(db)?;
    let row = store.run(run)?;
    crate::store::check_resumable(&row)?;
    let args = store.run_args(run)?;
    let agents: Vec<AgentEndpoint> = args["agents"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).map(&endpoint).collect())
        .unwrap_or_default();
    if agents.is_empty() {
        return Err(StoreError::NotResumable {
            run,
            why: "it names no agents".into(),
        }
        .into());
    }
    let planned = Duration::from_secs_f64(args["duration_s"].as_f64().unwrap_or(0.0).max(0.0));
    let end_ns = (row.started_ns.max(0) as u64).saturating_add(planned.as_nanos() as u64);
    let left = Duration::from_nanos(end_ns.saturating_sub(now_ns()));
    let mut cfg = RecordConfig::new(agents, left.max(RESUME_CATCH_UP), db.to_path_buf());
    cfg.label = row.label;
    cfg.include_history = args["include_history"].as_bool().unwrap_or(false);
    cfg.resume = Some(run);
    Ok(cfg)
}

/// Live progress of one agent in a recording.
#[derive(Debug, Clone, Default)]
pub struct AgentProgress {
    pub address: String,
    pub hostname: String,
    pub connected: bool,
    pub samples: u64,
    pub last_seq: u64,
    pub lost: u64,
    pub reconnects: u64,
    pub offset: Option<Offset>,
    pub last_error: Option<String>,
}

/// Shared progress, for a CLI to print while recording runs.
pub type Progress = Arc<Mutex<Vec<AgentProgress>>>;

/// The result of a recording.
#[derive(Debug, Clone)]
pub struct RecordOutcome {
    pub run_id: i64,
    pub agents: Vec<AgentProgress>,
    /// Sessions that ended with an error no reconnect could cure.
    pub failures: Vec<(String, String)>,
}

/// Errors of a recording as a whole.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store writer stopped unexpectedly")]
    Writer,
}

enum Op {
    Connected {
        idx: usize,
        address: String,
        inv: Box<Inventory>,
    },
    Offset {
        idx: usize,
        o: Offset,
    },
    Samples {
        idx: usize,
        samples: Vec<servescope_proto::v1::Sample>,
    },
    Gap {
        idx: usize,
        g: servescope_proto::v1::Gap,
    },
    Reconnect {
        idx: usize,
    },
}

/// Writer: applies ops in order; remembers each session's current agent id.
/// `ids`: each session's agent row so far (a resumed run's), so that another
/// instance behind the same session is stored as a restart.
fn writer(
    mut store: Store,
    run: i64,
    mut ids: Vec<Option<i64>>,
    mut rx: mpsc::Receiver<Op>,
) -> Result<Store, StoreError> {
    while let Some(op) = rx.blocking_recv() {
        if let Err(e) = apply(&mut store, run, &mut ids, op) {
            return Err(store.name_full(e));
        }
    }
    Ok(store)
}

/// Applies one op.
fn apply(store: &mut Store, run: i64, ids: &mut [Option<i64>], op: Op) -> Result<(), StoreError> {
    match op {
        Op::Connected { idx, address, inv } => {
            let id = store.agent_id(&address, &inv)?;
            store.add_run_agent(run, id)?;
            store.save_inventory(run, id, &inv)?;
            if let Some(slot) = ids.get_mut(idx) {
                if let Some(before) = slot.filter(|b| *b != id) {
                    store.save_restart(run, before, id, now_ns())?;
                }
                *slot = Some(id);
            }
        }
        Op::Offset { idx, o } => {
            if let Some(Some(id)) = ids.get(idx) {
                store.save_offset(run, *id, now_ns(), &o)?;
            }
        }
        Op::Samples { idx, samples } => {
            if let Some(Some(id)) = ids.get(idx) {
                store.save_samples(run, *id, &samples)?;
            }
        }
        Op::Gap { idx, g } => {
            if let Some(Some(id)) = ids.get(idx) {
                store.save_gap(run, *id, now_ns(), &g)?;
            }
        }
        Op::Reconnect { idx } => {
            if let Some(Some(id)) = ids.get(idx) {
                store.add_reconnect(run, *id)?;
            }
        }
    }
    Ok(())
}

/// Records for `cfg.duration`. Returns when every session has ended and every
/// sample is committed.
pub async fn record(cfg: RecordConfig, progress: Progress) -> Result<RecordOutcome, RecordError> {
    let store = Store::open(&cfg.db)?;
    if let Some(pages) = cfg.max_store_pages {
        store.limit_pages(pages)?;
    }
    let (run, cursors) = match cfg.resume {
        Some(run) => (run, store.resume_run(run)?.cursors),
        None => {
            let args = serde_json::json!({
                "agents": cfg.agents.iter().map(|a| a.address.clone()).collect::<Vec<_>>(),
                "duration_s": cfg.duration.as_secs_f64(),
                "include_history": cfg.include_history,
            });
            let run = store.create_run(RunKind::Record, &cfg.label, now_ns(), &args.to_string())?;
            (run, Vec::new())
        }
    };
    let cursor_of = |ep: &AgentEndpoint| -> Option<&AgentCursor> {
        cursors.iter().find(|c| c.address == ep.address)
    };
    {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        *p = cfg
            .agents
            .iter()
            .map(|a| AgentProgress {
                address: a.address.clone(),
                last_seq: cursor_of(a).and_then(|c| c.last_seq).unwrap_or(0),
                ..Default::default()
            })
            .collect();
    }
    let (wtx, wrx) = mpsc::channel::<Op>(1024);
    let n = cfg.agents.len();
    let ids = cfg
        .agents
        .iter()
        .map(|a| cursor_of(a).map(|c| c.agent_id))
        .collect();
    let wh = tokio::task::spawn_blocking(move || writer(store, run, ids, wrx));
    let deadline = Instant::now() + cfg.duration;
    let mut tasks = Vec::new();
    for (idx, ep) in cfg.agents.iter().cloned().enumerate() {
        let wtx = wtx.clone();
        let progress = Arc::clone(&progress);
        let mut sc = SessionConfig::new(ep.clone());
        sc.kinds = cfg.kinds.clone();
        sc.from_seq = cfg.include_history.then_some(0);
        if let Some(c) = cursor_of(&ep) {
            sc.instance = Some(c.instance);
            if let Some(last) = c.last_seq {
                sc.from_seq = Some(last + 1);
            }
        }
        sc.backoff_initial = cfg.backoff_initial;
        sc.backoff_max = cfg.backoff_max;
        tasks.push(tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel(64);
            let sess = tokio::spawn(session::run(sc, deadline, tx));
            while let Some(ev) = rx.recv().await {
                let op = {
                    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                    let me = &mut p[idx];
                    match ev {
                        SessionEvent::Connected { inventory, .. } => {
                            me.connected = true;
                            me.hostname = inventory.hostname.clone();
                            Op::Connected {
                                idx,
                                address: ep.address.clone(),
                                inv: inventory,
                            }
                        }
                        SessionEvent::Offset(o) => {
                            me.offset = Some(o);
                            Op::Offset { idx, o }
                        }
                        SessionEvent::Samples(s) => {
                            me.samples += s.len() as u64;
                            me.last_seq = s.last().map(|x| x.seq).unwrap_or(me.last_seq);
                            Op::Samples { idx, samples: s }
                        }
                        SessionEvent::Gap(g) => {
                            me.lost += g.lost;
                            Op::Gap { idx, g }
                        }
                        SessionEvent::Disconnected(why) => {
                            me.connected = false;
                            me.reconnects += 1;
                            me.last_error = Some(why);
                            Op::Reconnect { idx }
                        }
                    }
                };
                if wtx.send(op).await.is_err() {
                    // The writer stopped (its error ends the recording).
                    sess.abort();
                    break;
                }
            }
            let r = sess
                .await
                .unwrap_or_else(|e| Err(format!("session task failed: {e}")));
            (ep.address, r)
        }));
    }
    drop(wtx);
    let mut failures = Vec::new();
    for t in tasks {
        if let Ok((addr, Err(why))) = t.await {
            failures.push((addr, why));
        }
    }
    let store = match wh.await.map_err(|_| RecordError::Writer)? {
        Ok(store) => store,
        Err(e) => {
            // Committed samples stay; mark the run failed if the store still takes
            // that (a full disk usually allows an update in place).
            if let Ok(s) = Store::open(&cfg.db) {
                let _ = s.finish_run(run, now_ns(), "failed");
            }
            return Err(e.into());
        }
    };
    let status = if failures.len() == n && n > 0 {
        "failed"
    } else {
        "done"
    };
    store.finish_run(run, now_ns(), status)?;
    let agents = progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(RecordOutcome {
        run_id: run,
        agents,
        failures,
    })
}
