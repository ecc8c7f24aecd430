//! The simulator's latency model and fault settings.

use serde::{Deserialize, Serialize};

use crate::prefix::PrefixCacheConfig;

/// Fault injection rates (0..=1 each) and parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Faults {
    /// Fraction of requests answered with HTTP 500 before any token.
    pub error_rate: f64,
    /// Fraction of requests that stall once mid-stream for `stall_s`.
    pub stall_rate: f64,
    pub stall_s: f64,
    /// Fraction of streams cut (connection aborted) halfway, without `[DONE]`.
    pub truncate_rate: f64,
    /// Fraction of requests whose output is gibberish instead of the expected text.
    pub gibberish_rate: f64,
}

/// Prefill–decode disaggregation: a prefill stage, a KV transfer, a decode stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PdConfig {
    /// Sequences prefilled at once on the prefill instance.
    pub prefill_slots: usize,
    /// KV cache bytes per prompt token moved from P to D.
    pub kv_bytes_per_token: u64,
    /// Transfer bandwidth of one link, GB/s (10⁹ B/s).
    pub kv_gbps: f64,
    /// Transfers that can run at once (one link each).
    pub kv_links: usize,
    /// NIXL handshake on the first transfer.
    pub handshake_s: f64,
    /// Fault: fraction of transfers on a slow path (e.g. TCP instead of RDMA)…
    pub slow_kv_rate: f64,
    /// …that many times slower.
    pub slow_kv_factor: f64,
    /// Fault: fraction of transfers that fail (D then recomputes the prefill locally
    /// and P's blocks expire after `kv_lease_s`).
    #[serde(default)]
    pub kv_fail_rate: f64,
    /// How long P keeps blocks nobody read (vLLM 0.33 `kv_lease_duration`, 30 s).
    #[serde(default = "default_lease")]
    pub kv_lease_s: f64,
}

fn default_lease() -> f64 {
    30.0
}

impl Default for PdConfig {
    fn default() -> Self {
        PdConfig {
            prefill_slots: 8,
            kv_bytes_per_token: 160 * 1024,
            kv_gbps: 10.0,
            kv_links: 4,
            handshake_s: 0.05,
            slow_kv_rate: 0.0,
            slow_kv_factor: 100.0,
            kv_fail_rate: 0.0,
            kv_lease_s: default_lease(),
        }
    }
}

impl PdConfig {
    /// Time to move the KV cache of `tokens` prompt tokens on a normal link.
    pub fn transfer_s(&self, tokens: u32) -> f64 {
        (self.kv_bytes_per_token * u64::from(tokens)) as f64 / (self.kv_gbps * 1e9)
    }
}

/// Latency model. Times in seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimConfig {
    pub model: String,
    /// Fixed part of prefill per request.
    pub prefill_base_s: f64,
    /// Prefill time per input token (e.g. 50 µs: 20 k tokens/s).
    pub prefill_s_per_token: f64,
    /// Interval between output tokens (TPOT).
    pub decode_s_per_token: f64,
    /// Sequences decoded at once (vLLM `--max-num-seqs`); the rest wait.
    pub max_num_seqs: usize,
    /// Waiting requests beyond this are refused with 503.
    pub max_waiting: usize,
    /// Tokens per streamed chunk.
    pub tokens_per_chunk: u32,
    /// Output length when the request gives no max_tokens.
    pub default_max_tokens: u32,
    pub faults: Faults,
    /// Seed of the fault and gibberish generator.
    pub seed: u64,
    /// Prefill–decode disaggregation; `max_num_seqs` is then the decode instance's.
    pub pd: Option<PdConfig>,
    /// Automatic prefix caching (see [`crate::prefix`]); not modelled with `pd`.
    #[serde(default)]
    pub prefix_cache: Option<PrefixCacheConfig>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            model: "servescope-sim".into(),
            prefill_base_s: 0.010,
            prefill_s_per_token: 0.000_05,
            decode_s_per_token: 0.010,
            max_num_seqs: 64,
            max_waiting: 100_000,
            tokens_per_chunk: 1,
            default_max_tokens: 128,
            faults: Faults::default(),
            seed: 1,
            pd: None,
            prefix_cache: None,
        }
    }
}

impl SimConfig {
    /// A simulator that answers as fast as it can (client benchmarks).
    pub fn zero_latency() -> Self {
        SimConfig {
            prefill_base_s: 0.0,
            prefill_s_per_token: 0.0,
            decode_s_per_token: 0.0,
            max_num_seqs: 1 << 20,
            ..Default::default()
        }
    }

    /// Predicted server-side TTFT of an uncontended request (queue empty).
    pub fn predicted_ttft_s(&self, input_tokens: u32) -> f64 {
        self.prefill_base_s + self.prefill_s_per_token * f64::from(input_tokens)
    }

    pub fn validate(&self) -> Result<(), String> {
        let nonneg = [
            ("prefill_base_s", self.prefill_base_s),
            ("prefill_s_per_token", self.prefill_s_per_token),
            ("decode_s_per_token", self.decode_s_per_token),
            ("stall_s", self.faults.stall_s),
        ];
        for (n, v) in nonneg {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{n} must be a finite number ≥ 0 (got {v})"));
            }
        }
        let rates = [
            ("error_rate", self.faults.error_rate),
            ("stall_rate", self.faults.stall_rate),
            ("truncate_rate", self.faults.truncate_rate),
            ("gibberish_rate", self.faults.gibberish_rate),
        ];
        for (n, v) in rates {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{n} must be within 0..1 (got {v})"));
            }
        }
        if let Some(pd) = &self.pd {
            if pd.prefill_slots == 0 || pd.kv_links == 0 {
                return Err("pd prefill_slots and kv_links must be ≥ 1".into());
            }
            if !(pd.kv_gbps.is_finite() && pd.kv_gbps > 0.0) {
                return Err(format!("pd kv_gbps must be > 0 (got {})", pd.kv_gbps));
            }
            let factor_ok = pd.slow_kv_factor.is_finite() && pd.slow_kv_factor >= 1.0;
            let handshake_ok = pd.handshake_s.is_finite() && pd.handshake_s >= 0.0;
            if !(0.0..=1.0).contains(&pd.slow_kv_rate) || !factor_ok || !handshake_ok {
                return Err(
                    "pd slow_kv_rate must be within 0..1, slow_kv_factor ≥ 1, handshake_s ≥ 0"
                        .into(),
                );
            }
            let lease_ok = pd.kv_lease_s.is_finite() && pd.kv_lease_s > 0.0;
            if !(0.0..=1.0).contains(&pd.kv_fail_rate) || !lease_ok {
                return Err("pd kv_fail_rate must be within 0..1 and kv_lease_s > 0".into());
            }
        }
        if let Some(pc) = &self.prefix_cache {
            pc.validate()?;
            if self.pd.is_some() {
                return Err(
                    "the prefix cache is not simulated with prefill–decode disaggregation".into(),
                );
            }
        }
        if self.max_num_seqs == 0 || self.tokens_per_chunk == 0 {
            return Err("max_num_seqs and tokens_per_chunk must be ≥ 1".into());
        }
        Ok(())
    }
}
