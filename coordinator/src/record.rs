//! Recording: sessions to several agents for a duration, into one run of the store.
//! One writer thread owns the SQLite connection; sessions hand it batches.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use servescope_proto::now_ns;
use servescope_proto::v1::Inventory;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::clock::Offset;
use crate::connect::AgentEndpoint;
use crate::session::{self, SessionConfig, SessionEvent};
use crate::store::{RunKind, Store, StoreError};

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
        }
    }
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
fn writer(
    mut store: Store,
    run: i64,
    n: usize,
    mut rx: mpsc::Receiver<Op>,
) -> Result<Store, StoreError> {
    let mut ids: Vec<Option<i64>> = vec![None; n];
    while let Some(op) = rx.blocking_recv() {
        match op {
            Op::Connected { idx, address, inv } => {
                let id = store.agent_id(&address, &inv)?;
                store.add_run_agent(run, id)?;
                store.save_inventory(run, id, &inv)?;
                if let Some(slot) = ids.get_mut(idx) {
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
    }
    Ok(store)
}

/// Records for `cfg.duration`. Returns when every session has ended and every
/// sample is committed.
pub async fn record(cfg: RecordConfig, progress: Progress) -> Result<RecordOutcome, RecordError> {
    let store = Store::open(&cfg.db)?;
    let args = serde_json::json!({
        "agents": cfg.agents.iter().map(|a| a.address.clone()).collect::<Vec<_>>(),
        "duration_s": cfg.duration.as_secs_f64(),
        "include_history": cfg.include_history,
    });
    let run = store.create_run(RunKind::Record, &cfg.label, now_ns(), &args.to_string())?;
    {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        *p = cfg
            .agents
            .iter()
            .map(|a| AgentProgress {
                address: a.address.clone(),
                ..Default::default()
            })
            .collect();
    }
    let (wtx, wrx) = mpsc::channel::<Op>(1024);
    let n = cfg.agents.len();
    let wh = tokio::task::spawn_blocking(move || writer(store, run, n, wrx));
    let deadline = Instant::now() + cfg.duration;
    let mut tasks = Vec::new();
    for (idx, ep) in cfg.agents.iter().cloned().enumerate() {
        let wtx = wtx.clone();
        let progress = Arc::clone(&progress);
        let mut sc = SessionConfig::new(ep.clone());
        sc.kinds = cfg.kinds.clone();
        sc.from_seq = cfg.include_history.then_some(0);
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
    let store = wh.await.map_err(|_| RecordError::Writer)??;
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
