//! The agent's side of fabric probes: at most one probe at a time, prepared (endpoint
//! open, address known) and then run on a blocking thread, streaming results. A
//! closed stream, a dead peer or the plan's time limit ends it cleanly.

pub mod counters;
pub mod nixl_check;
pub mod nixl_telemetry;
pub mod plan_msg;
pub mod preflight;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use servescope_fabric::{open_endpoint, FabricError, PeerInfo, ProbeEndpoint, ProbePlan};
use servescope_proto::v1::{
    probe_event, PrepareProbeRequest, PrepareProbeResponse, ProbeEvent, ProbeRole, ProbeSummary,
    RunProbeRequest,
};
use tokio::sync::mpsc;
use tonic::Status;

use crate::clock::now_ns;

/// Default time a prepared probe waits for its RunProbe.
pub const DEFAULT_PREPARE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the probe thread is told after Prepare.
struct RunCmd {
    peer: PeerInfo,
    tx: mpsc::Sender<Result<ProbeEvent, Status>>,
}

enum State {
    Idle,
    Prepared {
        id: String,
        cmd: std::sync::mpsc::SyncSender<RunCmd>,
        expires: Instant,
    },
    Running {
        id: String,
    },
}

/// One probe at a time. Each probe's endpoint lives on one thread from Prepare to
/// the end of Run (UCX workers are single-threaded; a CUDA context is current per
/// thread).
pub struct ProbeManager {
    state: Mutex<State>,
    sysfs_root: PathBuf,
}

impl ProbeManager {
    pub fn new(sysfs_root: PathBuf) -> Self {
        ProbeManager {
            state: Mutex::new(State::Idle),
            sysfs_root,
        }
    }

    pub fn sysfs_root(&self) -> &std::path::Path {
        &self.sysfs_root
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the endpoint for `req` on a probe thread, which then waits for RunProbe.
    pub async fn prepare(
        self: &Arc<Self>,
        req: PrepareProbeRequest,
    ) -> Result<PrepareProbeResponse, Status> {
        if req.probe_id.is_empty() || req.probe_id.len() > 128 {
            return Err(Status::invalid_argument(
                "probe_id: must be 1..=128 characters",
            ));
        }
        let role = ProbeRole::try_from(req.role)
            .ok()
            .filter(|r| *r != ProbeRole::Unspecified)
            .ok_or_else(|| Status::invalid_argument("role: must be driver or responder"))?;
        let plan = plan_msg::plan_from_msg(&req.plan.clone().unwrap_or_default())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // Each side opens its own memory (GPU → host: the responder's is host memory).
        let plan = if role == ProbeRole::Responder {
            plan.for_responder()
        } else {
            plan
        };
        let transport = req
            .transport
            .clone()
            .ok_or_else(|| Status::invalid_argument("transport: missing"))?;
        let timeout = match req.prepare_timeout_ms {
            0 => DEFAULT_PREPARE_TIMEOUT,
            ms => Duration::from_millis(ms.min(600_000)),
        };
        let id = req.probe_id.clone();
        let (cmd_tx, cmd_rx) = std::sync::mpsc::sync_channel::<RunCmd>(1);
        {
            let mut st = self.lock();
            if let Some(busy) = busy(&st) {
                return Err(busy);
            }
            // Reserved now, so that a racing Prepare is refused.
            *st = State::Prepared {
                id: id.clone(),
                cmd: cmd_tx,
                expires: Instant::now() + timeout,
            };
        }
        let (info_tx, info_rx) = tokio::sync::oneshot::channel();
        let me = Arc::clone(self);
        let id2 = id.clone();
        let spawned = std::thread::Builder::new()
            .name("fabric-probe".into())
            .spawn(move || {
                let mut ep = match open_endpoint(&transport, &plan) {
                    Ok(ep) => ep,
                    Err(e) => {
                        me.release(&id2);
                        let _ = info_tx.send(Err(e));
                        return;
                    }
                };
                let _ = info_tx.send(Ok(ep.local_info()));
                let Ok(cmd) = cmd_rx.recv_timeout(timeout) else {
                    // Never run: the endpoint closes; the slot frees.
                    me.release(&id2);
                    return;
                };
                if let Err(e) = me.run_on_thread(&mut *ep, role, &plan, &cmd) {
                    let _ = cmd.tx.blocking_send(Err(fabric_status(e)));
                }
                drop(ep);
                me.release(&id2);
            });
        if let Err(e) = spawned {
            self.release(&id);
            return Err(Status::internal(format!(
                "cannot start the probe thread: {e}"
            )));
        }
        let info = info_rx
            .await
            .map_err(|_| Status::internal("probe thread ended without an answer"))?
            .map_err(fabric_status)?;
        Ok(PrepareProbeResponse {
            probe_id: id,
            address: info.address,
            rma: info.rma,
        })
    }

    /// Frees the slot if it still belongs to `id`.
    fn release(&self, id: &str) {
        let mut st = self.lock();
        let mine = match &*st {
            State::Prepared { id: i, .. } | State::Running { id: i } => i == id,
            State::Idle => false,
        };
        if mine {
            *st = State::Idle;
        }
    }

    /// Hands the peer to the prepared probe's thread; events go to `tx`.
    pub fn run(
        &self,
        req: RunProbeRequest,
        tx: mpsc::Sender<Result<ProbeEvent, Status>>,
    ) -> Result<(), Status> {
        let mut st = self.lock();
        if req.peer_address.is_empty() {
            // An empty peer cancels a prepared probe (the coordinator's clean-up when
            // the other side could not be prepared): dropping the sender ends the
            // probe thread's wait.
            if matches!(&*st, State::Prepared { id, .. } if *id == req.probe_id) {
                *st = State::Idle;
                return Ok(());
            }
            return Err(Status::invalid_argument("peer_address: empty"));
        }
        let cmd = match &*st {
            State::Prepared { id, cmd, expires }
                if *id == req.probe_id && *expires > Instant::now() =>
            {
                cmd.clone()
            }
            State::Running { id } => {
                return Err(Status::resource_exhausted(format!("probe {id} is running")))
            }
            State::Prepared { id, expires, .. } if *expires > Instant::now() => {
                return Err(Status::failed_precondition(format!(
                    "probe {} is not prepared here (probe {id} is)",
                    req.probe_id
                )))
            }
            _ => {
                return Err(Status::failed_precondition(format!(
                    "probe {} is not prepared here (call PrepareProbe first; prepared \
                     probes expire)",
                    req.probe_id
                )))
            }
        };
        let run = RunCmd {
            peer: PeerInfo {
                address: req.peer_address,
                rma: req.peer_rma,
            },
            tx,
        };
        cmd.try_send(run)
            .map_err(|_| Status::failed_precondition("the prepared probe is gone"))?;
        *st = State::Running { id: req.probe_id };
        Ok(())
    }

    fn run_on_thread(
        &self,
        ep: &mut dyn ProbeEndpoint,
        role: ProbeRole,
        plan: &ProbePlan,
        cmd: &RunCmd,
    ) -> Result<(), FabricError> {
        let tx = &cmd.tx;
        let start_ns = now_ns();
        let before = counters::snapshot(&self.sysfs_root);
        let deadline = Instant::now() + plan.max_duration;
        let cancelled = AtomicBool::new(false);
        let cancel = || {
            if tx.is_closed() || Instant::now() > deadline {
                cancelled.store(true, Ordering::Relaxed);
            }
            cancelled.load(Ordering::Relaxed)
        };
        ep.connect(&cmd.peer)?;
        // One size at a time, so that each result streams as soon as it exists; both
        // sides walk the same sizes in the same order.
        for &size in &plan.sizes {
            if cancel() {
                return Err(if tx.is_closed() {
                    FabricError::Cancelled
                } else {
                    FabricError::Timeout(plan.max_duration, "the probe's max_duration")
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let step = ProbePlan {
                sizes: vec![size],
                max_duration: left.max(Duration::from_millis(1)),
                ..plan.clone()
            };
            match role {
                ProbeRole::Responder => ep.run_responder(&step, &cancel)?,
                _ => {
                    for r in ep.run_driver(&step, &cancel)? {
                        let ev = ProbeEvent {
                            event: Some(probe_event::Event::Result(plan_msg::result_to_msg(&r))),
                        };
                        if tx.blocking_send(Ok(ev)).is_err() {
                            return Err(FabricError::Cancelled);
                        }
                    }
                }
            }
        }
        let after = counters::snapshot(&self.sysfs_root);
        let summary = ProbeSummary {
            truth: Some(plan_msg::truth_to_msg(&ep.truth())),
            start_ns,
            end_ns: now_ns(),
            deltas: counters::deltas(&before, &after),
        };
        let _ = tx.blocking_send(Ok(ProbeEvent {
            event: Some(probe_event::Event::Summary(summary)),
        }));
        Ok(())
    }
}

fn busy(st: &State) -> Option<Status> {
    match st {
        State::Idle => None,
        State::Prepared { expires, .. } if *expires <= Instant::now() => None,
        State::Prepared { id, .. } => Some(Status::resource_exhausted(format!(
            "probe {id} is prepared on this agent (one probe at a time)"
        ))),
        State::Running { id } => Some(Status::resource_exhausted(format!(
            "probe {id} is running on this agent (one probe at a time)"
        ))),
    }
}

fn fabric_status(e: FabricError) -> Status {
    match e {
        FabricError::Plan(p) => Status::invalid_argument(p.to_string()),
        FabricError::Unavailable { .. }
        | FabricError::NixlUnavailable(_)
        | FabricError::Unsupported(_)
        | FabricError::Memory(..) => Status::failed_precondition(e.to_string()),
        FabricError::BadPeer(_) => Status::invalid_argument(e.to_string()),
        FabricError::Timeout(..) => Status::deadline_exceeded(e.to_string()),
        FabricError::Cancelled => Status::cancelled(e.to_string()),
        FabricError::Call { .. } | FabricError::Nixl { .. } => Status::aborted(e.to_string()),
        FabricError::Mismatch { .. } => Status::data_loss(e.to_string()),
    }
}
