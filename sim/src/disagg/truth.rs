//! Ground truth of a disaggregated run: what each stage of each request really took,
//! recorded by the proxy, the prefill and the decode instances as they do it, served
//! as JSON at the proxy's `GET /servescope/truth` so that attribution tests can compare
//! what servescope recovers with what happened. Not a vLLM interface.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Requests remembered at most (the oldest ids are forgotten first).
const MAX: usize = 1 << 20;

/// One request's stages (ms; times ns since the Unix epoch, this host's clock).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// The client's `x-request-id`.
    pub request_id: String,
    /// Proxy: request received; injected overhead before calling P.
    pub proxy_in_ns: Option<u64>,
    pub proxy_delay_ms: f64,
    /// Proxy: stream batching interval applied to D's stream (0: none).
    pub stream_batch_ms: f64,
    pub prefill_engine: Option<String>,
    pub p_arrival_ns: Option<u64>,
    pub p_queue_ms: f64,
    pub p_prefill_ms: f64,
    pub p_done_ns: Option<u64>,
    pub decode_engine: Option<String>,
    pub d_arrival_ns: Option<u64>,
    /// D: arrival → scheduled (what vLLM reports as D's queue time).
    pub d_queue_ms: f64,
    /// D: waiting for a running slot (KV blocks) before the transfer could start.
    pub d_capacity_wait_ms: f64,
    /// D: waiting for a free transfer link.
    pub kv_link_wait_ms: f64,
    pub kv_handshake_ms: f64,
    pub kv_transfer_ms: f64,
    /// How late D's timer for handshake + transfer fired (a loaded host): part of
    /// D's queue that no span tells apart from the handshake.
    pub kv_timer_late_ms: f64,
    pub kv_bytes: u64,
    pub slow_kv: bool,
    pub kv_failed: bool,
    /// D recomputed the prompt after a failed transfer.
    pub kv_recompute_ms: f64,
    /// D: scheduled → first token (the recompute of the last prompt token).
    pub d_first_step_ms: f64,
    pub d_first_token_ns: Option<u64>,
    /// Decode time per output token the engine ran at.
    pub decode_ms_per_token: f64,
}

/// Truth of every request, by `x-request-id`.
#[derive(Debug, Default)]
pub struct TruthBook {
    m: Mutex<BTreeMap<String, (u64, Truth)>>,
    next: std::sync::atomic::AtomicU64,
}

impl TruthBook {
    /// Applies `f` to the entry of `request_id` (created when new).
    pub fn update(&self, request_id: &str, f: impl FnOnce(&mut Truth)) {
        let mut m = self.m.lock().unwrap_or_else(|e| e.into_inner());
        if !m.contains_key(request_id) && m.len() >= MAX {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let e = m.entry(request_id.to_string()).or_insert_with(|| {
            (
                n,
                Truth {
                    request_id: request_id.to_string(),
                    ..Default::default()
                },
            )
        });
        f(&mut e.1);
    }

    pub fn get(&self, request_id: &str) -> Option<Truth> {
        let m = self.m.lock().unwrap_or_else(|e| e.into_inner());
        m.get(request_id).map(|e| e.1.clone())
    }

    /// Every request, in arrival order.
    pub fn all(&self) -> Vec<Truth> {
        let m = self.m.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m.values().cloned().collect();
        v.sort_by_key(|e| e.0);
        v.into_iter().map(|e| e.1).collect()
    }
}
