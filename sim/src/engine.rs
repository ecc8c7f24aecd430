//! The simulated engine: a waiting queue in front of `max_num_seqs` running slots
//! (continuous batching: sequences join and leave independently), prefill time from
//! the input length, then one chunk every `decode_s_per_token × tokens_per_chunk`.
//! Token times are absolute deadlines from the first token, so timer jitter does not
//! accumulate. Faults are decided per request from a seeded generator.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::json;
use servescope_proto::now_ns;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::config::SimConfig;
use crate::disagg::truth::TruthBook;
use crate::otlp::{RequestTimes, SpanSink};
use crate::prefix::PrefixCache;
use crate::prom::{Finish, Metrics, H};
use crate::text;

mod kv;
mod request;

pub use request::{GenRequest, Out, Refusal, RemoteKv, Role};

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
    pub(crate) slots: Arc<Semaphore>,
    /// PD mode: prefill-instance slots and KV links.
    p_slots: Arc<Semaphore>,
    links: Arc<Semaphore>,
    /// Remote engines this one has done the NIXL handshake with.
    handshakes: Mutex<HashSet<String>>,
    pub role: Role,
    /// Engine id (`remote_engine_id` in kv_transfer_params).
    pub name: String,
    pub(crate) truth: Option<Arc<TruthBook>>,
    pub(crate) spans: Option<SpanSink>,
    /// Prefill instance: blocks kept for a reader, with their lease deadline.
    pub(crate) pending: Mutex<HashMap<String, Instant>>,
    /// Decode instance: the prefill instances, to release blocks after a read.
    pub(crate) prefills: OnceLock<Vec<Arc<Engine>>>,
    /// The port this instance listens on (for `remote_port`).
    pub listen_port: std::sync::atomic::AtomicU16,
    pub(crate) waiting: AtomicUsize,
    /// Decode instance: requests waiting for a transfer link / in transfer.
    pub(crate) kv_waiting: AtomicUsize,
    pub(crate) kv_in_progress: AtomicUsize,
    pub(crate) running: AtomicUsize,
    rng: Mutex<u64>,
    pub metrics: Metrics,
    next_id: AtomicU64,
    /// Automatic prefix caching, when configured.
    prefix: Option<Mutex<PrefixCache>>,
}

/// Sends the chunks batched so far as one message; false when the client has gone.
async fn flush(tx: &mpsc::Sender<Out>, batch: &mut Vec<String>) -> bool {
    tx.send(Out::Chunks(std::mem::take(batch))).await.is_ok()
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
            handshakes: Mutex::new(HashSet::new()),
            role: Role::Unified,
            name: "sim".into(),
            truth: None,
            spans: None,
            pending: Mutex::new(HashMap::new()),
            prefills: OnceLock::new(),
            listen_port: std::sync::atomic::AtomicU16::new(0),
            waiting: AtomicUsize::new(0),
            kv_waiting: AtomicUsize::new(0),
            kv_in_progress: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            rng: Mutex::new(cfg.seed.max(1)),
            metrics: match cfg.prefix_cache {
                Some(_) => Metrics::new(&cfg.model, cfg.pd.is_some()).with_prefix_cache(),
                None => Metrics::new(&cfg.model, cfg.pd.is_some()),
            },
            next_id: AtomicU64::new(1),
            prefix: cfg.prefix_cache.map(|c| Mutex::new(PrefixCache::new(c))),
            cfg,
        }
    }

    /// An instance of a disaggregated deployment (see [`crate::disagg`]).
    pub fn disaggregated(
        cfg: SimConfig,
        role: Role,
        name: String,
        truth: Arc<TruthBook>,
        spans: Option<SpanSink>,
    ) -> Self {
        let mut e = Engine::new(cfg);
        e.role = role;
        e.name = name;
        e.truth = Some(truth);
        e.spans = spans;
        e
    }

    pub(crate) fn truth(&self, client_id: &str, f: impl FnOnce(&mut crate::disagg::truth::Truth)) {
        if let Some(t) = &self.truth {
            t.update(client_id, f);
        }
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Prometheus text of this instance.
    pub fn render_metrics(&self) -> String {
        let kv = (self.role == Role::Decode
            || (self.role == Role::Unified && self.cfg.pd.is_some()))
        .then(|| {
            (
                self.kv_waiting.load(Ordering::Relaxed),
                self.kv_in_progress.load(Ordering::Relaxed),
            )
        });
        self.metrics.render_with(self.running(), self.waiting(), kv)
    }

    /// The chained block hashes of a prompt's text for the prefix cache (none
    /// without one).
    pub fn prefix_blocks(&self, prompt: &str) -> Vec<u64> {
        self.cfg.prefix_cache.map_or_else(Vec::new, |c| {
            crate::prefix::block_hashes(prompt, c.block_size, usize::MAX)
        })
    }

    /// The prefix cache lookup as the request is scheduled: prompt tokens served from
    /// the cache (`None` without a cache).
    fn prefix_lookup(&self, req: &GenRequest) -> Option<u32> {
        let cache = self.prefix.as_ref()?;
        let hit = cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .schedule(&req.prefix_blocks, req.prompt_tokens);
        self.metrics
            .prefix_lookup(u64::from(req.prompt_tokens), u64::from(hit));
        Some(hit)
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn roll(&self, rate: f64) -> bool {
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
        let arrival_ns = now_ns();
        let at_ns = |t: Instant| arrival_ns + (t - queued).as_nanos() as u64;
        let step = Duration::from_secs_f64(cfg.decode_s_per_token);
        let prefill = Duration::from_secs_f64(cfg.predicted_ttft_s(req.prompt_tokens));
        // Unified PD: prefill on P, then D takes a slot, pulls the KV cache, recomputes
        // the last token and decodes. Ground truth of each stage goes back to the client.
        let mut truth = None;
        let unified_pd = self.role == Role::Unified && cfg.pd.is_some();
        let d_arrival = if unified_pd {
            let Ok(p_permit) = Arc::clone(&self.p_slots).acquire_owned().await else {
                return;
            };
            let p_sched = Instant::now();
            tokio::time::sleep(prefill).await;
            drop(p_permit);
            truth = Some((secs(p_sched - queued), secs(Instant::now() - p_sched)));
            Instant::now()
        } else {
            queued
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = Arc::clone(&self.slots).acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let Ok(_permit) = permit else { return };
        let cached = self.prefix_lookup(&req);
        let remote = match (&req.remote, unified_pd) {
            (Some(r), _) if self.role == Role::Decode => Some(r.clone()),
            (_, true) => Some(RemoteKv {
                engine_id: "local".into(),
                request_id: req.id.clone(),
                tokens: req.prompt_tokens,
            }),
            _ => None,
        };
        let kv = match (&cfg.pd, remote) {
            (Some(pd), Some(r)) => {
                let Some(k) = self.pull_kv(pd, r, plan.slow_kv, d_arrival).await else {
                    return;
                };
                Some(k)
            }
            _ => None,
        };
        self.running.fetch_add(1, Ordering::Relaxed);
        let scheduled = Instant::now();
        // PD: the first token is one step after the transfer (recompute of the last
        // prompt token); otherwise after prefill.
        let prefill = match (kv.is_some(), cached) {
            (true, _) => step,
            // Only the tokens not in the cache are computed.
            (false, Some(c)) => {
                Duration::from_secs_f64(cfg.predicted_ttft_s(req.prompt_tokens.saturating_sub(c)))
            }
            (false, None) => prefill,
        };
        let first = scheduled + prefill;
        let n = req.max_tokens.max(1);
        let per_chunk = cfg.tokens_per_chunk;
        let mut sent = 0u32;
        let mut shift = Duration::ZERO;
        let mut last = first;
        // When the first chunk actually went out (timers fire late by up to a tick).
        let mut first_sent = None;
        let mut finish = Finish::Length;
        // Chunks already due go out together (one channel message), so that a
        // zero-latency engine costs little per token; a chunk is never held back past
        // the moment the engine would wait for the next one.
        let mut batch: Vec<String> = Vec::new();
        while sent < n {
            let k = per_chunk.min(n - sent);
            // The chunk's last token is due at first + (index of that token) × step.
            let due = first + step * (sent + k - 1) + shift;
            if due > Instant::now() {
                if !batch.is_empty() && !flush(&tx, &mut batch).await {
                    finish = Finish::Abort;
                    break;
                }
                tokio::time::sleep_until(due).await;
            }
            let mut s = String::new();
            for i in sent..sent + k {
                if plan.gibberish {
                    s.push_str(&text::gibberish(&mut seed));
                } else {
                    s.push_str(&text::token(i, req.counting));
                }
            }
            last = Instant::now();
            if first_sent.is_none() {
                first_sent = Some(last);
                if self.role == Role::Decode {
                    let (first_ns, sched) = (at_ns(last), secs(last - scheduled));
                    self.truth(&req.client_id, |t| {
                        t.d_first_token_ns = Some(first_ns);
                        t.d_first_step_ms = sched * 1e3;
                    });
                }
            }
            batch.push(s);
            if batch.len() >= 64 && !flush(&tx, &mut batch).await {
                finish = Finish::Abort;
                break;
            }
            sent += k;
            if sent >= n.div_ceil(2) && sent < n {
                if plan.truncate {
                    if !batch.is_empty() {
                        let _ = tx.send(Out::Chunks(std::mem::take(&mut batch))).await;
                    }
                    let _ = tx.send(Out::Cut).await;
                    finish = Finish::Abort;
                    break;
                }
                if plan.stall && shift.is_zero() {
                    shift = Duration::from_secs_f64(cfg.faults.stall_s);
                }
            }
        }
        if !batch.is_empty() && tx.send(Out::Chunks(batch)).await.is_err() {
            finish = Finish::Abort;
        }
        self.running.fetch_sub(1, Ordering::Relaxed);
        let m = &self.metrics;
        let first = first_sent.unwrap_or(first);
        let ttft = secs(first.max(scheduled) - queued);
        let e2e = secs(last - queued);
        let gen = secs(last.saturating_duration_since(first));
        m.observe(H::Queue, secs(scheduled - d_arrival));
        m.observe(H::Ttft, ttft);
        m.observe(H::Prefill, secs(first.max(scheduled) - scheduled));
        m.observe(H::Decode, gen);
        m.observe(H::Inference, secs(last - scheduled));
        m.observe(H::E2e, e2e);
        m.observe(H::PromptTokens, f64::from(req.prompt_tokens));
        m.observe(H::GenerationTokens, f64::from(sent));
        if sent > 1 {
            let tpot = gen / f64::from(sent - 1);
            m.observe(H::Tpot, tpot);
            m.observe(H::Itl, tpot);
        }
        m.tokens(u64::from(req.prompt_tokens), u64::from(sent));
        m.finished(finish);
        if let Some(k) = kv {
            if self.role == Role::Decode {
                let d_arrival_ns = at_ns(d_arrival);
                let d_queue = secs(scheduled - d_arrival);
                let slow = plan.slow_kv;
                let dms = cfg.decode_s_per_token * 1e3;
                let name = self.name.clone();
                self.truth(&req.client_id, |t| {
                    t.decode_engine = Some(name);
                    t.d_arrival_ns = Some(d_arrival_ns);
                    t.d_capacity_wait_ms = k.d_wait * 1e3;
                    t.d_queue_ms = d_queue * 1e3;
                    t.kv_link_wait_ms = k.link_wait * 1e3;
                    t.kv_handshake_ms = k.handshake * 1e3;
                    t.kv_transfer_ms = k.xfer * 1e3;
                    t.kv_timer_late_ms = k.late * 1e3;
                    t.kv_bytes = k.bytes;
                    t.slow_kv = slow;
                    t.kv_failed = k.failed;
                    t.kv_recompute_ms = k.recompute * 1e3;
                    t.decode_ms_per_token = dms;
                });
            }
        }
        if let Some(sink) = &self.spans {
            sink.request(&RequestTimes {
                request_id: format!("{}-0", req.id),
                model: cfg.model.clone(),
                arrival_ns,
                end_ns: at_ns(last),
                prompt_tokens: req.prompt_tokens,
                completion_tokens: sent,
                queue_s: secs(scheduled - d_arrival),
                ttft_s: ttft,
                e2e_s: e2e,
                prefill_s: secs(first.max(scheduled) - scheduled),
                decode_s: gen,
                inference_s: secs(last - scheduled),
            });
        }
        if finish == Finish::Length {
            let mut metrics = json!({
                "time_to_first_token_ms": secs(first - scheduled) * 1e3,
                "generation_time_ms": gen * 1e3,
                "queue_time_ms": secs(scheduled - d_arrival) * 1e3,
                "mean_itl_ms": if sent > 1 { gen * 1e3 / f64::from(sent - 1) } else { 0.0 },
                "tokens_per_second": f64::from(sent) / secs(last - scheduled).max(1e-9),
            });
            if let Some(c) = cached {
                metrics["cached_tokens"] = json!(c);
            }
            if let (Some((p_queue, p_prefill)), Some(k)) = (truth, kv) {
                // Not a vLLM field: what the simulator did, for attribution tests.
                metrics["servescope_ground_truth"] = json!({
                    "p_queue_ms": p_queue * 1e3, "p_prefill_ms": p_prefill * 1e3,
                    "d_capacity_wait_ms": k.d_wait * 1e3, "kv_link_wait_ms": k.link_wait * 1e3,
                    "kv_handshake_ms": k.handshake * 1e3, "kv_transfer_ms": k.xfer * 1e3, "kv_bytes": k.bytes,
                    "slow_kv": plan.slow_kv,
                });
            }
            let _ = tx
                .send(Out::Done {
                    prompt_tokens: req.prompt_tokens,
                    completion_tokens: sent,
                    cached_tokens: cached,
                    metrics,
                })
                .await;
        }
    }
}
