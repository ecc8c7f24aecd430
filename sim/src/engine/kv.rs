//! D's KV step of a disaggregated request: a transfer link, the NIXL handshake
//! with a new peer, the transfer, and the recompute when the transfer fails.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{secs, Engine, RemoteKv};
use crate::config::PdConfig;

/// What D's KV step did for one request (the simulator's own account).
#[derive(Debug, Clone, Copy)]
pub(super) struct KvDone {
    /// Waiting for a running slot before the transfer could start, s.
    pub d_wait: f64,
    /// Waiting for a free transfer link, s.
    pub link_wait: f64,
    /// The modelled handshake (first request with a peer), s.
    pub handshake: f64,
    /// The modelled transfer, s.
    pub xfer: f64,
    pub bytes: u64,
    pub failed: bool,
    /// D's recompute of the prompt after a failed transfer, s.
    pub recompute: f64,
    /// How late the timer for handshake + transfer fired, s.
    pub late: f64,
}

impl Engine {
    /// Pulls `r`'s KV cache for a request that arrived at D at `d_arrival` and now
    /// holds a running slot; `None` when the engine is shutting down (the link pool
    /// closed).
    pub(super) async fn pull_kv(
        &self,
        pd: &PdConfig,
        r: RemoteKv,
        slow_kv: bool,
        d_arrival: Instant,
    ) -> Option<KvDone> {
        let slot_at = Instant::now();
        self.kv_waiting.fetch_add(1, Ordering::Relaxed);
        let link = Arc::clone(&self.links).acquire_owned().await;
        self.kv_waiting.fetch_sub(1, Ordering::Relaxed);
        let link = link.ok()?;
        let link_at = Instant::now();
        self.kv_in_progress.fetch_add(1, Ordering::Relaxed);
        let first_with_peer = self
            .handshakes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.engine_id.clone());
        let handshake = if first_with_peer { pd.handshake_s } else { 0.0 };
        if first_with_peer {
            tracing::debug!("NIXL handshake: get metadata took: {:.6}", handshake / 2.0);
        }
        let mut xfer = pd.transfer_s(r.tokens);
        if slow_kv {
            xfer *= pd.slow_kv_factor;
        }
        // The transfer takes its modelled time; NIXL reports that. A timer firing
        // late is the engine noticing late: it counts in D's queue, not in the
        // transfer (see Truth::d_queue_ms).
        let planned = Duration::from_secs_f64(handshake + xfer);
        let slept_from = Instant::now();
        tokio::time::sleep(planned).await;
        let late = secs(slept_from.elapsed().saturating_sub(planned));
        self.kv_in_progress.fetch_sub(1, Ordering::Relaxed);
        drop(link);
        let bytes = pd.kv_bytes_per_token * u64::from(r.tokens);
        let failed = self.roll(pd.kv_fail_rate);
        let mut recompute = 0.0;
        if failed {
            self.metrics.nixl_failed();
            // vLLM's kv_load_failure_policy "recompute": D prefills the prompt itself.
            recompute = self.cfg.predicted_ttft_s(r.tokens);
            tokio::time::sleep(Duration::from_secs_f64(recompute)).await;
        } else {
            self.metrics.nixl_transfer(xfer, bytes);
            if let Some(ps) = self.prefills.get() {
                for p in ps.iter().filter(|p| p.name == r.engine_id) {
                    p.release(&r.request_id);
                }
            }
        }
        Some(KvDone {
            d_wait: secs(slot_at - d_arrival),
            link_wait: secs(link_at - slot_at),
            handshake,
            xfer,
            bytes,
            failed,
            recompute,
            late,
        })
    }
}
