//! The simulator's latency model and fault settings.

use serde::{Deserialize, Serialize};

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
        if self.max_num_seqs == 0 || self.tokens_per_chunk == 0 {
            return Err("max_num_seqs and tokens_per_chunk must be ≥ 1".into());
        }
        Ok(())
    }
}
