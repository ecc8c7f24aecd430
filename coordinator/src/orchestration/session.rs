//! One agent's telemetry session: connect, take the inventory, measure the clock
//! offset, stream from a sequence number, and on any break reconnect with backoff
//! and resume from the last sequence received — so a dropped stream loses nothing
//! the agent still holds, and what it no longer holds is recorded as a gap.

use std::time::Duration;

use servescope_proto::v1::{
    telemetry_message, GetInventoryRequest, Inventory, Sample, StreamTelemetryRequest,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::orchestration::clock;
use crate::orchestration::connect::{connect, AgentEndpoint};
use crate::store::Offset;

/// What a session reports, in order.
#[derive(Debug)]
pub enum SessionEvent {
    /// Connected (first time, or again). `restarted`: the agent process changed
    /// since the last connection, so its sequence numbers started over.
    Connected {
        inventory: Box<Inventory>,
        restarted: bool,
    },
    Offset(Offset),
    Samples(Vec<Sample>),
    Gap(servescope_proto::v1::Gap),
    /// The stream broke; the session will reconnect.
    Disconnected(String),
}

/// Session parameters.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub endpoint: AgentEndpoint,
    /// First sequence to ask for; None: the agent's next sequence at first connect
    /// (i.e. from now on).
    pub from_seq: Option<u64>,
    /// The agent instance `from_seq` belongs to (a resumed recording's); None: the
    /// instance met at first connect. Another instance started over at sequence 1.
    pub instance: Option<u64>,
    pub kinds: Vec<i32>,
    pub pings: usize,
    /// Samples are handed over in batches of at most this many…
    pub batch: usize,
    /// …or after this long.
    pub flush_every: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How long the agent may hold new samples to send them together (the
    /// stream's `max_delay_ms`). At the deadline the session keeps reading for up
    /// to this long (plus a margin) until it has what the agent had taken by then.
    pub max_delay: Duration,
}

/// Default [`SessionConfig::max_delay`]: a recorder needs no sub-second latency,
/// and batching five 100 ms samples per write is most of the agent's streaming CPU.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_millis(500);
/// Extra time allowed for the last batch to arrive after the deadline.
const DRAIN_MARGIN: Duration = Duration::from_millis(250);

impl SessionConfig {
    pub fn new(endpoint: AgentEndpoint) -> Self {
        SessionConfig {
            endpoint,
            from_seq: None,
            instance: None,
            kinds: Vec::new(),
            pings: 16,
            batch: 500,
            flush_every: Duration::from_millis(250),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            max_delay: DEFAULT_MAX_DELAY,
        }
    }
}

/// Runs the session until `deadline`, sending events to `tx`. Returns the last
/// sequence number received (0 if none). Errors that cannot be cured by
/// reconnecting (e.g. a refused token) end the session with the error.
pub async fn run(
    cfg: SessionConfig,
    deadline: Instant,
    tx: mpsc::Sender<SessionEvent>,
) -> Result<u64, String> {
    let mut next: Option<u64> = cfg.from_seq;
    let mut last_seq = 0u64;
    let mut instance: Option<u64> = cfg.instance;
    let mut backoff = cfg.backoff_initial;
    while Instant::now() < deadline {
        let seq_before = last_seq;
        let attempt = async {
            let mut client = connect(&cfg.endpoint)
                .await
                .map_err(|e| (false, e.to_string()))?;
            let inv = client
                .get_inventory(GetInventoryRequest {})
                .await
                .map_err(|s| (fatal(&s), describe(&s)))?
                .into_inner();
            let restarted = instance.is_some_and(|i| i != inv.agent_instance);
            if restarted {
                // A new agent process: its sequence numbers start at 1 again.
                next = Some(1);
            }
            instance = Some(inv.agent_instance);
            let from = *next.get_or_insert(inv.next_seq);
            let _ = tx
                .send(SessionEvent::Connected {
                    inventory: Box::new(inv),
                    restarted,
                })
                .await;
            if cfg.pings > 0 {
                let o = clock::measure(&mut client, cfg.pings)
                    .await
                    .map_err(|s| (fatal(&s), describe(&s)))?;
                let _ = tx.send(SessionEvent::Offset(o)).await;
            }
            let mut stream = client
                .stream_telemetry(StreamTelemetryRequest {
                    from_seq: from,
                    filter: Some(servescope_proto::v1::TelemetryFilter {
                        kinds: cfg.kinds.clone(),
                    }),
                    live_only: false,
                    max_delay_ms: u32::try_from(cfg.max_delay.as_millis()).unwrap_or(u32::MAX),
                })
                .await
                .map_err(|s| (fatal(&s), describe(&s)))?
                .into_inner();
            let mut batch: Vec<Sample> = Vec::new();
            let mut flush_at = Instant::now() + cfg.flush_every;
            // After the deadline: the agent's next sequence then, and when to stop
            // waiting for the samples before it.
            let mut drain: Option<(u64, Instant)> = None;
            loop {
                if let Some((head, until)) = drain {
                    if next.is_some_and(|n| n >= head) || Instant::now() >= until {
                        flush(&tx, &mut batch).await;
                        return Ok(());
                    }
                }
                let stop_at = drain.map_or(deadline, |(_, until)| until);
                let msg = tokio::select! {
                    m = stream.message() => m,
                    _ = tokio::time::sleep_until(flush_at) => {
                        flush(&tx, &mut batch).await;
                        flush_at = Instant::now() + cfg.flush_every;
                        continue;
                    }
                    _ = tokio::time::sleep_until(stop_at) => {
                        if drain.is_none() {
                            // Samples taken before the deadline may still sit in the
                            // agent's batching window: read up to its head now.
                            let head = client
                                .get_inventory(GetInventoryRequest {})
                                .await
                                .map(|r| r.into_inner().next_seq)
                                .unwrap_or(0);
                            drain = Some((head, Instant::now() + cfg.max_delay + DRAIN_MARGIN));
                            continue;
                        }
                        flush(&tx, &mut batch).await;
                        return Ok(());
                    }
                };
                match msg {
                    Ok(Some(m)) => match m.body {
                        Some(telemetry_message::Body::Sample(s)) => {
                            if drain.is_some_and(|(head, _)| s.seq >= head) {
                                // Taken after the deadline: not this recording's.
                                next = Some(s.seq + 1);
                                continue;
                            }
                            last_seq = s.seq;
                            next = Some(s.seq + 1);
                            batch.push(s);
                            if batch.len() >= cfg.batch {
                                let _ = tx
                                    .send(SessionEvent::Samples(std::mem::take(&mut batch)))
                                    .await;
                            }
                        }
                        Some(telemetry_message::Body::Gap(g)) => {
                            flush(&tx, &mut batch).await;
                            next = Some(g.resumed_at_seq);
                            let _ = tx.send(SessionEvent::Gap(g)).await;
                        }
                        None => {}
                    },
                    Ok(None) => {
                        flush(&tx, &mut batch).await;
                        return Err((false, "agent closed the stream".to_string()));
                    }
                    Err(s) => {
                        flush(&tx, &mut batch).await;
                        return Err((fatal(&s), describe(&s)));
                    }
                }
            }
        };
        match attempt.await {
            Ok(()) => return Ok(last_seq),
            Err((true, why)) => return Err(why),
            Err((false, why)) => {
                let _ = tx.send(SessionEvent::Disconnected(why)).await;
                // A connection that delivered samples starts the backoff over.
                if last_seq > seq_before {
                    backoff = cfg.backoff_initial;
                }
                let wait = backoff.min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(cfg.backoff_max);
            }
        }
    }
    Ok(last_seq)
}

/// Hands over the samples gathered so far, if any.
async fn flush(tx: &mpsc::Sender<SessionEvent>, batch: &mut Vec<Sample>) {
    if !batch.is_empty() {
        let _ = tx.send(SessionEvent::Samples(std::mem::take(batch))).await;
    }
}

/// Errors no reconnect will cure.
fn fatal(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied | tonic::Code::Unimplemented
    )
}

fn describe(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::Unauthenticated => format!("agent refused our credentials: {}", s.message()),
        c => format!("{c:?}: {}", s.message()),
    }
}
