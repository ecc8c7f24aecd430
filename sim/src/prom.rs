//! vLLM-named Prometheus metrics (names, types, label sets and bucket bounds as in
//! vLLM's own `/metrics` output).

use std::fmt::Write;
use std::sync::Mutex;

const TTFT: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const ITL: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const REQ: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];
const TOKENS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];
const NIXL_XFER: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 5.0,
];
/// 2^(10+i) for i = 1, 3, …, 23 (2 KiB … 8 GiB), as vLLM's NIXL stats.
const NIXL_BYTES: &[f64] = &[
    2048.0,
    8192.0,
    32768.0,
    131072.0,
    524288.0,
    2097152.0,
    8388608.0,
    33554432.0,
    134217728.0,
    536870912.0,
    2147483648.0,
    8589934592.0,
];

/// A cumulative histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }
}

/// Which histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H {
    Ttft,
    Itl,
    Tpot,
    E2e,
    Queue,
    Inference,
    Prefill,
    Decode,
    PromptTokens,
    GenerationTokens,
    NixlXferTime,
    NixlBytes,
}

const HISTOGRAMS: [(H, &str, &str, &[f64]); 12] = [
    (
        H::Ttft,
        "time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        TTFT,
    ),
    (
        H::Itl,
        "inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        ITL,
    ),
    (
        H::Tpot,
        "request_time_per_output_token_seconds",
        "Histogram of time_per_output_token_seconds per request.",
        ITL,
    ),
    (
        H::E2e,
        "e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        REQ,
    ),
    (
        H::Queue,
        "request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        REQ,
    ),
    (
        H::Inference,
        "request_inference_time_seconds",
        "Histogram of time spent in RUNNING phase for request.",
        REQ,
    ),
    (
        H::Prefill,
        "request_prefill_time_seconds",
        "Histogram of time spent in PREFILL phase for request.",
        REQ,
    ),
    (
        H::Decode,
        "request_decode_time_seconds",
        "Histogram of time spent in DECODE phase for request.",
        REQ,
    ),
    (
        H::PromptTokens,
        "request_prompt_tokens",
        "Number of prefill tokens processed.",
        TOKENS,
    ),
    (
        H::GenerationTokens,
        "request_generation_tokens",
        "Number of generation tokens processed.",
        TOKENS,
    ),
    (
        H::NixlXferTime,
        "nixl_xfer_time_seconds",
        "Histogram of transfer duration for NIXL KV Cache transfers.",
        NIXL_XFER,
    ),
    (
        H::NixlBytes,
        "nixl_bytes_transferred",
        "Histogram of bytes transferred per NIXL KV Cache transfers.",
        NIXL_BYTES,
    ),
];

#[derive(Debug)]
struct Inner {
    hist: Vec<Histogram>,
    prompt_tokens: u64,
    generation_tokens: u64,
    /// finished_reason → count: stop, length, abort, error.
    success: [u64; 4],
    /// NIXL: failed transfers (D) and blocks released unread after their lease (P).
    nixl_failed: u64,
    kv_expired: u64,
    /// Prefix cache: prompt tokens looked up and tokens found.
    prefix_queries: u64,
    prefix_hits: u64,
}

/// Writes one counter (`vllm:NAME_total` with its HELP and TYPE lines) labelled `l`.
fn counter(s: &mut String, l: &str, name: &str, help: &str, v: u64) {
    let _ = writeln!(s, "# HELP vllm:{name}_total {help}");
    let _ = writeln!(s, "# TYPE vllm:{name}_total counter");
    let _ = writeln!(s, "vllm:{name}_total{{{l}}} {v}.0");
}

/// The simulator's metrics.
#[derive(Debug)]
pub struct Metrics {
    model: String,
    /// PD mode: NIXL transfer metrics are exposed.
    pd: bool,
    /// The prefix cache counters are exposed.
    prefix_cache: bool,
    inner: Mutex<Inner>,
}

/// How a request finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop = 0,
    Length = 1,
    Abort = 2,
    Error = 3,
}

const FINISH: [&str; 4] = ["stop", "length", "abort", "error"];

impl Metrics {
    pub fn new(model: &str, pd: bool) -> Self {
        Metrics {
            model: model.to_string(),
            pd,
            prefix_cache: false,
            inner: Mutex::new(Inner {
                hist: HISTOGRAMS.iter().map(|h| Histogram::new(h.3)).collect(),
                prompt_tokens: 0,
                generation_tokens: 0,
                success: [0; 4],
                nixl_failed: 0,
                kv_expired: 0,
                prefix_queries: 0,
                prefix_hits: 0,
            }),
        }
    }

    /// Also exposes `vllm:prefix_cache_queries_total` and `vllm:prefix_cache_hits_total`.
    pub fn with_prefix_cache(mut self) -> Self {
        self.prefix_cache = true;
        self
    }

    /// One prefix cache lookup: `queried` prompt tokens, `hit` of them cached.
    pub fn prefix_lookup(&self, queried: u64, hit: u64) {
        let mut g = self.lock();
        g.prefix_queries += queried;
        g.prefix_hits += hit;
    }

    /// Prefix cache (queried, hit) tokens so far.
    pub fn prefix_counts(&self) -> (u64, u64) {
        let g = self.lock();
        (g.prefix_queries, g.prefix_hits)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn observe(&self, h: H, v: f64) {
        let i = HISTOGRAMS.iter().position(|x| x.0 == h).unwrap_or(0);
        self.lock().hist[i].observe(v);
    }

    pub fn tokens(&self, prompt: u64, generated: u64) {
        let mut g = self.lock();
        g.prompt_tokens += prompt;
        g.generation_tokens += generated;
    }

    /// One KV transfer (PD mode).
    pub fn nixl_transfer(&self, seconds: f64, bytes: u64) {
        self.observe(H::NixlXferTime, seconds);
        self.observe(H::NixlBytes, bytes as f64);
    }

    /// A failed KV transfer (decode instance).
    pub fn nixl_failed(&self) {
        self.lock().nixl_failed += 1;
    }

    /// A request whose KV blocks expired unread (prefill instance).
    pub fn kv_expired(&self) {
        self.lock().kv_expired += 1;
    }

    pub fn finished(&self, f: Finish) {
        self.lock().success[f as usize] += 1;
    }

    /// A copy of one histogram (tests).
    pub fn histogram(&self, h: H) -> Histogram {
        let i = HISTOGRAMS.iter().position(|x| x.0 == h).unwrap_or(0);
        self.lock().hist[i].clone()
    }

    /// Prometheus text, vLLM's names.
    pub fn render(&self, running: usize, waiting: usize) -> String {
        self.render_with(running, waiting, None)
    }

    /// [`Metrics::render`]; on a KV consumer also the requests waiting for a KV
    /// transfer to start and in transfer (`vllm:num_requests_waiting_by_reason`,
    /// `vllm:num_requests_kv_fetch_by_stage`, as vLLM ≥ 0.29).
    pub fn render_with(
        &self,
        running: usize,
        waiting: usize,
        kv: Option<(usize, usize)>,
    ) -> String {
        let g = self.lock();
        let l = format!(
            "engine=\"0\",model_name=\"{}\"",
            self.model.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut s = String::with_capacity(16 * 1024);
        let _ = writeln!(
            s,
            "# HELP vllm:num_requests_running Number of requests in model execution batches."
        );
        let _ = writeln!(s, "# TYPE vllm:num_requests_running gauge");
        let _ = writeln!(s, "vllm:num_requests_running{{{l}}} {running}.0");
        let _ = writeln!(
            s,
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed."
        );
        let _ = writeln!(s, "# TYPE vllm:num_requests_waiting gauge");
        let _ = writeln!(s, "vllm:num_requests_waiting{{{l}}} {waiting}.0");
        if let Some((to_start, in_progress)) = kv {
            let _ = writeln!(
                s,
                "# HELP vllm:num_requests_waiting_by_reason Number of requests waiting, by reason."
            );
            let _ = writeln!(s, "# TYPE vllm:num_requests_waiting_by_reason gauge");
            let _ = writeln!(
                s,
                "vllm:num_requests_waiting_by_reason{{{l},reason=\"capacity\"}} {waiting}.0"
            );
            let deferred = to_start + in_progress;
            let _ = writeln!(
                s,
                "vllm:num_requests_waiting_by_reason{{{l},reason=\"deferred\"}} {deferred}.0"
            );
            let _ = writeln!(s, "# HELP vllm:num_requests_kv_fetch_by_stage Requests fetching KV from a remote engine, by stage.");
            let _ = writeln!(s, "# TYPE vllm:num_requests_kv_fetch_by_stage gauge");
            let _ = writeln!(s, "vllm:num_requests_kv_fetch_by_stage{{{l},stage=\"waiting_to_start\"}} {to_start}.0");
            let _ = writeln!(
                s,
                "vllm:num_requests_kv_fetch_by_stage{{{l},stage=\"in_progress\"}} {in_progress}.0"
            );
        }
        for (name, help, v) in [
            (
                "prompt_tokens",
                "Number of prefill tokens processed.",
                g.prompt_tokens,
            ),
            (
                "generation_tokens",
                "Number of generation tokens processed.",
                g.generation_tokens,
            ),
        ] {
            counter(&mut s, &l, name, help, v);
        }
        let _ = writeln!(
            s,
            "# HELP vllm:request_success_total Count of successfully processed requests."
        );
        let _ = writeln!(s, "# TYPE vllm:request_success_total counter");
        for (i, r) in FINISH.iter().enumerate().take(3) {
            let _ = writeln!(s, "vllm:request_success_total{{engine=\"0\",finished_reason=\"{r}\",model_name=\"{}\"}} {}.0", self.model, g.success[i]);
        }
        if self.pd {
            for (name, help, v) in [
                (
                    "nixl_num_failed_transfers",
                    "Number of failed NIXL KV Cache transfers.",
                    g.nixl_failed,
                ),
                (
                    "nixl_num_kv_expired_reqs",
                    "Number of requests that had their KV expire.",
                    g.kv_expired,
                ),
            ] {
                counter(&mut s, &l, name, help, v);
            }
        }
        if self.prefix_cache {
            for (name, help, v) in [
                (
                    "prefix_cache_queries",
                    "Prefix cache queries, in terms of number of queried tokens.",
                    g.prefix_queries,
                ),
                (
                    "prefix_cache_hits",
                    "Prefix cache hits, in terms of number of cached tokens.",
                    g.prefix_hits,
                ),
            ] {
                counter(&mut s, &l, name, help, v);
            }
        }
        for ((which, name, help, bounds), h) in HISTOGRAMS.iter().zip(&g.hist) {
            if !self.pd && matches!(which, H::NixlXferTime | H::NixlBytes) {
                continue;
            }
            let _ = writeln!(s, "# HELP vllm:{name} {help}");
            let _ = writeln!(s, "# TYPE vllm:{name} histogram");
            let _ = writeln!(s, "vllm:{name}_sum{{{l}}} {}", h.sum);
            for (b, c) in bounds.iter().zip(&h.counts) {
                let _ = writeln!(s, "vllm:{name}_bucket{{{l},le=\"{b:?}\"}} {c}.0");
            }
            let _ = writeln!(s, "vllm:{name}_bucket{{{l},le=\"+Inf\"}} {}.0", h.count);
            let _ = writeln!(s, "vllm:{name}_count{{{l}}} {}.0", h.count);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_renders() {
        let m = Metrics::new("m", false);
        m.observe(H::Ttft, 0.03);
        m.observe(H::Ttft, 3.0);
        m.tokens(10, 5);
        m.finished(Finish::Length);
        let h = m.histogram(H::Ttft);
        assert_eq!(h.count(), 2);
        let text = m.render(1, 2);
        assert!(text.contains("vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"m\",le=\"0.04\"} 1.0"), "{text}");
        assert!(text.contains(
            "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"m\",le=\"5.0\"} 2.0"
        ));
        assert!(text
            .contains("vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"m\"} 2.0"));
        assert!(text.contains("vllm:request_success_total{engine=\"0\",finished_reason=\"length\",model_name=\"m\"} 1.0"));
        assert!(text.contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 2.0"));
        assert!(text.contains("vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 10.0"));
        assert!(!text.contains("prefix_cache"), "only with a prefix cache");
    }

    #[test]
    fn prefix_cache_counters_render_as_vllm_names_them() {
        let m = Metrics::new("m", false).with_prefix_cache();
        m.prefix_lookup(100, 64);
        m.prefix_lookup(50, 0);
        assert_eq!(m.prefix_counts(), (150, 64));
        let text = m.render(0, 0);
        assert!(
            text.contains("# TYPE vllm:prefix_cache_queries_total counter"),
            "{text}"
        );
        assert!(
            text.contains("vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 150.0")
        );
        assert!(text.contains("vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 64.0"));
    }
}
