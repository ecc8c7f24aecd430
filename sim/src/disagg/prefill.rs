//! The prefill instance's side of a disaggregated request: queue for a prefill slot,
//! prefill the prompt, answer with one token and keep the KV blocks for the decode
//! instance until it has read them or their lease expires (vLLM 0.33
//! `kv_lease_duration`; expiry counts in `vllm:nixl_num_kv_expired_reqs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::engine::Engine;
use crate::otlp::RequestTimes;
use crate::prom::{Finish, H};
use servescope_proto::now_ns;

/// What P reports for a finished prefill.
#[derive(Debug, Clone)]
pub struct PrefillDone {
    pub prompt_tokens: u32,
    /// vLLM's per-request `metrics` block.
    pub metrics: Value,
}

impl Engine {
    /// Prefills `prompt_tokens` for request `id` (client id `client_id`).
    pub async fn prefill_only(
        self: &Arc<Self>,
        id: &str,
        client_id: &str,
        prompt_tokens: u32,
    ) -> PrefillDone {
        let queued = Instant::now();
        let arrival_ns = now_ns();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = Arc::clone(&self.slots).acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.running.fetch_add(1, Ordering::Relaxed);
        let scheduled = Instant::now();
        let prefill = Duration::from_secs_f64(self.cfg.predicted_ttft_s(prompt_tokens));
        tokio::time::sleep(prefill).await;
        let done = Instant::now();
        drop(permit);
        self.running.fetch_sub(1, Ordering::Relaxed);
        let s = |d: Duration| d.as_secs_f64();
        let (queue, run, e2e) = (s(scheduled - queued), s(done - scheduled), s(done - queued));
        let m = &self.metrics;
        m.observe(H::Queue, queue);
        m.observe(H::Prefill, run);
        m.observe(H::Ttft, e2e);
        m.observe(H::Inference, run);
        m.observe(H::Decode, 0.0);
        m.observe(H::E2e, e2e);
        m.observe(H::PromptTokens, f64::from(prompt_tokens));
        m.observe(H::GenerationTokens, 1.0);
        m.tokens(u64::from(prompt_tokens), 1);
        m.finished(Finish::Length);
        let lease = self.cfg.pd.as_ref().map_or(30.0, |p| p.kv_lease_s);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), done + Duration::from_secs_f64(lease));
        let end_ns = arrival_ns + (done - queued).as_nanos() as u64;
        let name = self.name.clone();
        self.truth(client_id, |t| {
            t.prefill_engine = Some(name);
            t.p_arrival_ns = Some(arrival_ns);
            t.p_queue_ms = queue * 1e3;
            t.p_prefill_ms = run * 1e3;
            t.p_done_ns = Some(end_ns);
        });
        if let Some(sink) = &self.spans {
            sink.request(&RequestTimes {
                request_id: format!("{id}-0"),
                model: self.cfg.model.clone(),
                arrival_ns,
                end_ns,
                prompt_tokens,
                completion_tokens: 1,
                queue_s: queue,
                ttft_s: e2e,
                e2e_s: e2e,
                prefill_s: run,
                decode_s: 0.0,
                inference_s: run,
            });
        }
        PrefillDone {
            prompt_tokens,
            metrics: json!({
                "time_to_first_token_ms": run * 1e3,
                "generation_time_ms": 0.0,
                "queue_time_ms": queue * 1e3,
                "mean_itl_ms": 0.0,
                "tokens_per_second": 1.0 / run.max(1e-9),
            }),
        }
    }

    /// D has read the blocks of P's request `id`.
    pub(crate) fn release(&self, id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Releases blocks whose lease ran out; returns how many.
    pub(crate) fn expire(&self, now: Instant) -> usize {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let expired: Vec<String> = p
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for id in &expired {
            p.remove(id);
            self.metrics.kv_expired();
            tracing::warn!(
                "Releasing expired KV blocks for request {id} which were retrieved by 0 remote worker(s) before lease expired."
            );
        }
        expired.len()
    }
}
