//! The gRPC service `servescope.agent.v1.Agent`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use servescope_proto::v1::agent_server::Agent;
use servescope_proto::v1::{
    telemetry_message, Availability, FabricCheckRequest, FabricCheckResponse, GetInventoryRequest,
    Inventory, LoadShardEvent, LoadShardRequest, PingRequest, PingResponse, PrepareProbeRequest,
    PrepareProbeResponse, ProbeEvent, RunProbeRequest, StreamTelemetryRequest, TelemetryMessage,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::clock::now_ns;
use crate::probe::ProbeManager;
use crate::ring::Ring;

/// Samples read from the ring per lock acquisition.
const READ_BATCH: usize = 512;
/// Cap on a stream's `max_delay_ms`.
const MAX_DELAY_MS: u32 = 2000;

/// Messages buffered per stream before back-pressure.
const STREAM_BUFFER: usize = 256;

/// Builds the inventory: the part fixed at start plus live state.
pub struct InventorySource {
    pub base: Inventory,
    pub gpu_status: Arc<Mutex<Availability>>,
    pub ring: Arc<Ring>,
}

impl InventorySource {
    pub fn snapshot(&self) -> Inventory {
        let mut inv = self.base.clone();
        let st = self.ring.state();
        inv.now_ns = now_ns();
        inv.oldest_seq = st.oldest_seq;
        inv.next_seq = st.next_seq;
        if let Ok(g) = self.gpu_status.lock() {
            inv.gpu = Some(g.clone());
        }
        inv
    }
}

pub struct AgentService {
    pub inventory: Arc<InventorySource>,
    pub ring: Arc<Ring>,
    pub streams: Arc<AtomicU64>,
    pub shutdown: watch::Receiver<bool>,
    pub probes: Arc<ProbeManager>,
    pub shards: Arc<crate::shard::ShardGate>,
    pub admitted: Arc<Admitted>,
    /// After the first new sample, a live stream waits this long before reading the
    /// ring, so that the samples the collectors take on one tick (they share a grid)
    /// leave in one write rather than one each: fewer wake-ups and syscalls on both
    /// ends. Zero: no wait.
    pub coalesce: std::time::Duration,
}

/// Requests that reached the handlers which set up per-request buffers (a probe's
/// endpoint and memory, a load shard's runtime): a handler runs only after the
/// bearer token was checked and the message decoded within the size limit, so an
/// unauthenticated peer never moves these counts.
#[derive(Debug, Default)]
pub struct Admitted {
    pub probe_prepares: AtomicU64,
    pub load_shards: AtomicU64,
}

struct StreamGuard(Arc<AtomicU64>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn get_inventory(
        &self,
        _req: Request<GetInventoryRequest>,
    ) -> Result<Response<Inventory>, Status> {
        Ok(Response::new(self.inventory.snapshot()))
    }

    type StreamTelemetryStream = ReceiverStream<Result<TelemetryMessage, Status>>;

    async fn stream_telemetry(
        &self,
        req: Request<StreamTelemetryRequest>,
    ) -> Result<Response<Self::StreamTelemetryStream>, Status> {
        let r = req.into_inner();
        let kinds: Vec<i32> = r.filter.map(|f| f.kinds).unwrap_or_default();
        let ring = Arc::clone(&self.ring);
        let mut notify = ring.subscribe();
        let mut shutdown = self.shutdown.clone();
        let mut next = if r.live_only {
            ring.state().next_seq
        } else {
            r.from_seq
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        self.streams.fetch_add(1, Ordering::Relaxed);
        let guard = StreamGuard(Arc::clone(&self.streams));
        let coalesce = if r.max_delay_ms > 0 {
            std::time::Duration::from_millis(u64::from(r.max_delay_ms.min(MAX_DELAY_MS)))
        } else {
            self.coalesce
        };
        tokio::spawn(async move {
            let _guard = guard;
            loop {
                notify.borrow_and_update();
                let res = ring.read_from(next, READ_BATCH);
                if let Some(gap) = res.gap {
                    let msg = TelemetryMessage {
                        body: Some(telemetry_message::Body::Gap(gap)),
                    };
                    if tx.send(Ok(msg)).await.is_err() {
                        return;
                    }
                }
                let empty = res.samples.is_empty();
                for s in res.samples {
                    let wanted = kinds.is_empty()
                        || s.data
                            .as_ref()
                            .is_some_and(|d| kinds.contains(&(d.kind() as i32)));
                    if !wanted {
                        continue;
                    }
                    let msg = TelemetryMessage {
                        body: Some(telemetry_message::Body::Sample((*s).clone())),
                    };
                    if tx.send(Ok(msg)).await.is_err() {
                        return;
                    }
                }
                next = res.next;
                if empty {
                    tokio::select! {
                        r = notify.changed() => if r.is_err() { return },
                        _ = tx.closed() => return,
                        _ = shutdown.changed() => return,
                    }
                    if !coalesce.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(coalesce) => {}
                            _ = tx.closed() => return,
                            _ = shutdown.changed() => return,
                        }
                    }
                }
                if *shutdown.borrow() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn ping(&self, req: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        let recv = now_ns();
        let client_send_ns = req.into_inner().client_send_ns;
        Ok(Response::new(PingResponse {
            client_send_ns,
            agent_recv_ns: recv,
            agent_send_ns: now_ns(),
        }))
    }

    async fn prepare_probe(
        &self,
        req: Request<PrepareProbeRequest>,
    ) -> Result<Response<PrepareProbeResponse>, Status> {
        self.admitted.probe_prepares.fetch_add(1, Ordering::Relaxed);
        self.probes
            .prepare(req.into_inner())
            .await
            .map(Response::new)
    }

    type RunProbeStream = ReceiverStream<Result<ProbeEvent, Status>>;
    type RunLoadShardStream = ReceiverStream<Result<LoadShardEvent, Status>>;

    async fn run_load_shard(
        &self,
        req: Request<LoadShardRequest>,
    ) -> Result<Response<Self::RunLoadShardStream>, Status> {
        self.admitted.load_shards.fetch_add(1, Ordering::Relaxed);
        let rx = self.shards.start(req.into_inner().spec)?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn run_probe(
        &self,
        req: Request<RunProbeRequest>,
    ) -> Result<Response<Self::RunProbeStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        self.probes.run(req.into_inner(), tx)?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn fabric_check(
        &self,
        req: Request<FabricCheckRequest>,
    ) -> Result<Response<FabricCheckResponse>, Status> {
        let root = self.probes.sysfs_root().to_path_buf();
        let read = req.into_inner().read_nixl_telemetry;
        tokio::task::spawn_blocking(move || crate::probe::preflight::check(&root, read))
            .await
            .map(Response::new)
            .map_err(|e| Status::internal(format!("fabric check thread: {e}")))
    }
}
