//! `RunLoadShard`: this agent sends one shard of a distributed load with the load
//! engine (servescope-loadgen) and streams each finished request back. The shard
//! runs on its own thread and runtime, so the agent's collectors and telemetry
//! streams do not compete with it for the agent's single async thread. One shard at
//! a time; when the caller goes away the shard is stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use servescope_loadgen::shard::{run_shard, ShardSpec};
use servescope_proto::v1::{LoadShardEvent, LoadShardSpec};
use tokio::sync::mpsc;
use tonic::Status;

/// Records per streamed event at most.
const BATCH: usize = 256;
/// Largest spec accepted.
const MAX_SPEC_BYTES: usize = 64 << 10;

/// Admits one shard at a time.
#[derive(Debug, Default)]
pub struct ShardGate {
    busy: Arc<AtomicBool>,
}

/// Clears the gate when the shard's thread ends.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl ShardGate {
    /// Validates `spec` and starts the shard; its events arrive on the receiver.
    pub fn start(
        &self,
        spec: Option<LoadShardSpec>,
    ) -> Result<mpsc::Receiver<Result<LoadShardEvent, Status>>, Status> {
        let spec = spec.ok_or_else(|| Status::invalid_argument("shard spec is missing"))?;
        let len = spec.encoded_len();
        if len > MAX_SPEC_BYTES {
            return Err(Status::invalid_argument(format!(
                "shard spec of {len} bytes is over the {MAX_SPEC_BYTES} accepted"
            )));
        }
        let spec =
            ShardSpec::try_from(spec).map_err(|e| Status::invalid_argument(e.to_string()))?;
        spec.validate()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if self
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Status::resource_exhausted(
                "a load shard is already running on this agent",
            ));
        }
        let busy = Busy(Arc::clone(&self.busy));
        let (tx, rx) = mpsc::channel(64);
        let thread = std::thread::Builder::new()
            .name("load-shard".into())
            .spawn(move || {
                let _busy = busy;
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ =
                            tx.blocking_send(Err(Status::internal(format!("shard runtime: {e}"))));
                        return;
                    }
                };
                rt.block_on(drive(spec, tx));
            });
        if let Err(e) = thread {
            return Err(Status::internal(format!(
                "cannot start the shard thread: {e}"
            )));
        }
        Ok(rx)
    }
}

/// Runs the shard, batching records onto `tx`; stops when `tx`'s receiver is gone.
async fn drive(spec: ShardSpec, tx: mpsc::Sender<Result<LoadShardEvent, Status>>) {
    // Records wait here until the sender forwards them; bounded by the shard's own
    // request bound (ShardSpec::validate).
    let (rtx, mut rrx) = mpsc::unbounded_channel::<String>();
    let on_record = move |r| {
        if let Ok(j) = serde_json::to_string(&r) {
            // The receiver lives until the shard ends; a send cannot fail before.
            let _ = rtx.send(j);
        }
    };
    let shard = run_shard(&spec, on_record);
    tokio::pin!(shard);
    let mut batch = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let result = loop {
        tokio::select! {
            r = &mut shard => break r,
            Some(j) = rrx.recv() => {
                batch.push(j);
                if batch.len() >= BATCH && send(&tx, &mut batch).await.is_err() {
                    return;
                }
            }
            _ = tick.tick() => {
                if !batch.is_empty() && send(&tx, &mut batch).await.is_err() {
                    return;
                }
                if tx.is_closed() {
                    return;
                }
            }
        }
    };
    while let Ok(j) = rrx.try_recv() {
        batch.push(j);
        if batch.len() >= BATCH && send(&tx, &mut batch).await.is_err() {
            return;
        }
    }
    let (sent, error) = match result {
        Ok(n) => (n as u64, String::new()),
        Err(e) => (0, e.to_string()),
    };
    let last = LoadShardEvent {
        records: std::mem::take(&mut batch),
        done: true,
        sent,
        error,
    };
    let _ = tx.send(Ok(last)).await;
}

async fn send(
    tx: &mpsc::Sender<Result<LoadShardEvent, Status>>,
    batch: &mut Vec<String>,
) -> Result<(), ()> {
    let ev = LoadShardEvent {
        records: std::mem::take(batch),
        ..Default::default()
    };
    tx.send(Ok(ev)).await.map_err(|_| ())
}
