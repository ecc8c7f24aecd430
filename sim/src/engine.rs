//! The simulated engine: a waiting queue in front of `max_num_seqs` running slots
//! (continuous batching: sequences join and leave independently), prefill time from
//! the input length, then one chunk every `decode_s_per_token × tokens_per_chunk`.
//! Token times are absolute deadlines from the first token, so timer jitter does not
//! accumulate. Faults are decided per request from a seeded generator.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::config::SimConfig;
use crate::prom::{Finish, Metrics, H};
use crate::text;

/// One generation request, as the HTTP layer parsed it.
#[derive(Debug, Clone)]
pub struct GenRequest {
    pub id: String,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    pub counting: Option<u64>,
}

/// What the engine emits for a request, in order.
#[derive(Debug)]
pub enum Out {
    /// Output text of `tokens` tokens.
    Chunk { text: String, tokens: u32 },
    /// The stream must be cut here (truncation fault): no more data, no [DONE].
    Cut,
    /// Finished: usage and vLLM's per-request `metrics` block.
    Done {
        prompt_tokens: u32,
        completion_tokens: u32,
        metrics: serde_json::Value,
    },
}

/// Why a request was refused before generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Injected server error.
    Injected,
    /// The waiting queue is full.
    Overloaded,
}

/// Decided faults of one request.
#[derive(Debug, Clone, Copy, Default)]
struct Plan {
    slow_kv: bool,
    stall: bool,
    truncate: bool,
    gibberish: bool,
}

pub struct Engine {
    pub cfg: SimConfig,
    slots: Arc<Semaphore>,
    /// PD mode: prefill-instance slots and KV links.
    p_slots: Arc<Semaphore>,
    links: Arc<Semaphore>,
    handshake_done: std::sync::atomic::AtomicBool,
    waiting: AtomicUsize,
    running: AtomicUsize,
    rng: Mutex<u64>,
    pub metrics: Metrics,
    next_id: AtomicU64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Engine {
    pub fn new(cfg: SimConfig) -> Self {
        Engine {
            slots: Arc::new(Semaphore::new(cfg.max_num_seqs.min(Semaphore::MAX_PERMITS))),
            p_slots: Arc::new(Semaphore::new(
                cfg.pd
                    .as_ref()
                    .map_or(1, |p| p.prefill_slots)
                    .min(Semaphore::MAX_PERMITS),
            )),
            links: Arc::new(Semaphore::new(
                cfg.pd
                    .as_ref()
                    .map_or(1, |p| p.kv_links)
                    .min(Semaphore::MAX_PERMITS),
            )),
            handshake_done: std::sync::atomic::AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            rng: Mutex::new(cfg.seed.max(1)),
            metrics: Metrics::new(&cfg.model, cfg.pd.is_some()),
            next_id: AtomicU64::new(1),
            cfg,
        }
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn roll(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let mut g = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        text::unit(&mut g) < rate
    }

    /// Admission: injected errors and queue bound. Call before [`Engine::run`].
    pub fn admit(&self) -> Result<(), Refusal> {
        if self.roll(self.cfg.faults.error_rate) {
            self.metrics.finished(Finish::Error);
            return Err(Refusal::Injected);
        }
        if self.waiting() >= self.cfg.max_waiting {
            return Err(Refusal::Overloaded);
        }
        Ok(())
    }

    /// Generates `req` on a task; its output arrives on the returned channel. If the
    /// receiver goes away (client disconnected) the request is aborted.
    pub fn run(self: &Arc<Self>, req: GenRequest) -> mpsc::Receiver<Out> {
        let (tx, rx) = mpsc::channel(64);
        let f = &self.cfg.faults;
        let plan = Plan {
            slow_kv: self
                .cfg
                .pd
                .as_ref()
                .is_some_and(|p| self.roll(p.slow_kv_rate)),
            stall: self.roll(f.stall_rate),
            truncate: self.roll(f.truncate_rate),
            gibberish: self.roll(f.gibberish_rate),
        };
        let seed = {
            let mut g = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            text::next(&mut g)
        };
        let me = Arc::clone(self);
        tokio::spawn(async move { me.generate(req, plan, seed, tx).await });
        rx
    }

    async fn generate(
        self: Arc<Self>,
        req: GenRequest,
        plan: Plan,
        mut seed: u64,
        tx: mpsc::Sender<Out>,
    ) {
        let cfg = &self.cfg;
        let queued = Instant::now();
        let step = Duration::from_secs_f64(cfg.decode_s_per_token);
        let prefill = Duration::from_secs_f64(cfg.predicted_ttft_s(req.prompt_tokens));
        // PD: prefill on P, then D takes a slot, pulls the KV cache, recomputes the
        // last token and decodes. Ground truth of each stage goes back to the client.
        let mut truth = None;
        let d_arrival = match &cfg.pd {
            None => queued,
            Some(_) => {
                let Ok(p_permit) = Arc::clone(&self.p_slots).acquire_owned().await else {
                    return;
                };
                let p_sched = Instant::now();
                tokio::time::sleep(prefill).await;
                drop(p_permit);
                truth = Some((secs(p_sched - queued), secs(Instant::now() - p_sched)));
                Instant::now()
            }
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = Arc::clone(&self.slots).acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let Ok(_permit) = permit else { return };
        let mut kv = None;
        if let Some(pd) = &cfg.pd {
            let slot_at = Instant::now();
            let Ok(link) = Arc::clone(&self.links).acquire_owned().await else {
                return;
            };
            let link_at = Instant::now();
            let handshake = if self.handshake_done.swap(true, Ordering::Relaxed) {
                0.0
            } else {
                pd.handshake_s
            };
            let mut xfer = pd.transfer_s(req.prompt_tokens);
            if plan.slow_kv {
                xfer *= pd.slow_kv_factor;
            }
            tokio::time::sleep(Duration::from_secs_f64(handshake + xfer)).await;
            drop(link);
            let bytes = pd.kv_bytes_per_token * u64::from(req.prompt_tokens);
            self.metrics.nixl_transfer(handshake + xfer, bytes);
            kv = Some((
                secs(slot_at - d_arrival),
                secs(link_at - slot_at),
                handshake,
                xfer,
                bytes,
            ));
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        let scheduled = Instant::now();
        // PD: the first token is one step after the transfer (recompute of the last
        // prompt token); otherwise after prefill.
        let prefill = if cfg.pd.is_some() { step } else { prefill };
        let first = scheduled + prefill;
        let n = req.max_tokens.max(1);
        let per_chunk = cfg.tokens_per_chunk;
        let mut sent = 0u32;
        let mut shift = Duration::ZERO;
        let mut last = first;
        // When the first chunk actually went out (timers fire late by up to a tick).
        let mut first_sent = None;
        let mut finish = Finish::Length;
        while sent < n {
            let k = per_chunk.min(n - sent);
            // The chunk's last token is due at first + (index of that token) × step.
            let due = first + step * (sent + k - 1) + shift;
            tokio::time::sleep_until(due).await;
            let mut s = String::new();
            for i in sent..sent + k {
                if plan.gibberish {
                    s.push_str(&text::gibberish(&mut seed));
                } else {
                    s.push_str(&text::token(i, req.counting));
                }
            }
            last = Instant::now();
            first_sent.get_or_insert(last);
            if tx.send(Out::Chunk { text: s, tokens: k }).await.is_err() {
                finish = Finish::Abort;
                break;
            }
            sent += k;
            if sent >= n.div_ceil(2) && sent < n {
                if plan.truncate {
                    let _ = tx.send(Out::Cut).await;
                    finish = Finish::Abort;
                    break;
                }
                if plan.stall && shift.is_zero() {
                    shift = Duration::from_secs_f64(cfg.faults.stall_s);
                }
            }
        }
        self.running.fetch_sub(1, Ordering::Relaxed);
        let m = &self.metrics;
        let first = first_sent.unwrap_or(first);
        let ttft = secs(first.max(scheduled) - queued);
        let e2e = secs(last - queued);
        m.observe(H::Queue, secs(scheduled - d_arrival));
        m.observe(H::Ttft, ttft);
        m.observe(H::Prefill, secs(prefill));
        m.observe(H::Decode, secs(last.saturating_duration_since(first)));
        m.observe(H::Inference, secs(last - scheduled));
        m.observe(H::E2e, e2e);
        m.observe(H::PromptTokens, f64::from(req.prompt_tokens));
        m.observe(H::GenerationTokens, f64::from(sent));
        if sent > 1 {
            let tpot = secs(last.saturating_duration_since(first)) / f64::from(sent - 1);
            m.observe(H::Tpot, tpot);
            m.observe(H::Itl, tpot);
        }
        m.tokens(u64::from(req.prompt_tokens), u64::from(sent));
        m.finished(finish);
        if finish == Finish::Length {
            let gen = secs(last.saturating_duration_since(first));
            let mut metrics = json!({
                "time_to_first_token_ms": secs(first - scheduled) * 1e3,
                "generation_time_ms": gen * 1e3,
                "queue_time_ms": secs(scheduled - d_arrival) * 1e3,
                "mean_itl_ms": if sent > 1 { gen * 1e3 / f64::from(sent - 1) } else { 0.0 },
                "tokens_per_second": f64::from(sent) / secs(last - scheduled).max(1e-9),
            });
            if let (Some((p_queue, p_prefill)), Some((d_wait, link_wait, hs, xfer, bytes))) =
                (truth, kv)
            {
                // Not a vLLM field: what the simulator did, for attribution tests.
                metrics["servescope_ground_truth"] = json!({
                    "p_queue_ms": p_queue * 1e3, "p_prefill_ms": p_prefill * 1e3,
                    "d_capacity_wait_ms": d_wait * 1e3, "kv_link_wait_ms": link_wait * 1e3,
                    "kv_handshake_ms": hs * 1e3, "kv_transfer_ms": xfer * 1e3, "kv_bytes": bytes,
                    "slow_kv": plan.slow_kv,
                });
            }
            let _ = tx
                .send(Out::Done {
                    prompt_tokens: req.prompt_tokens,
                    completion_tokens: sent,
                    metrics,
                })
                .await;
        }
    }
}
