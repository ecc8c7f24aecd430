//! Per-request TTFT decomposition along the P/D pipeline:
//!
//! ```text
//! scheduled ─client_wait─► sent ─ingress─► P arrival ─p_queue─► ─p_prefill─► P done
//!   ─handoff─► D arrival ─[D queue: kv_handshake, kv_transfer, d_wait]─► D scheduled
//!   ─d_first_step─► D first token ─network_back─► client first token
//! ```
//!
//! Sources: the client record (scheduled, sent, first token: the coordinator's clock),
//! P's `llm_request` span (arrival = span start, `time_in_queue`,
//! `time_in_model_prefill`), D's per-request `metrics` block (`queue_time_ms`,
//! `time_to_first_token_ms` = scheduled → first token) or else D's span, and D's
//! arrival from D's span. Span times are the engine host's clock, moved onto the
//! coordinator's by that host's measured offset when an agent runs there; otherwise
//! the same clock is assumed and the breakdown says so.
//!
//! vLLM does not report the KV transfer per request: on a NIXL decode instance the
//! queue time holds capacity wait + handshake + transfer. The transfer is estimated
//! as prompt tokens × KV bytes per token ÷ NIXL bandwidth, both from D's
//! `vllm:nixl_*` deltas over the run (see [`KvRate`]); the rest of the queue is the
//! handshake for the first request of a P–D pair and `d_wait` otherwise. Every
//! component carries its source; the client's TTFT minus their sum is `residual_ms`.

use std::collections::HashMap;

use serde::Serialize;

use super::join::Joined;

/// KV bytes per prompt token and NIXL bandwidth of one decode instance over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KvRate {
    pub bytes_per_token: f64,
    pub bytes_per_s: f64,
}

/// One slice of a request's TTFT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    pub name: &'static str,
    pub ms: f64,
    pub source: &'static str,
}

/// Decode-side split of the time per output token.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecodeSplit {
    /// Client: (last chunk − first chunk) / (tokens − 1).
    pub client_tpot_ms: Option<f64>,
    /// Engine: D's mean inter-token latency.
    pub engine_itl_ms: Option<f64>,
    /// client_tpot − engine_itl: streaming, batching, proxy relaying.
    pub streaming_overhead_ms: Option<f64>,
    /// Output tokens per arrival burst: chunks that reached the client in the same
    /// read count as one burst (a proxy flushing every 50 ms delivers many at once).
    pub tokens_per_burst: Option<f64>,
    /// Median gap between arrival bursts at the client.
    pub burst_gap_p50_ms: Option<f64>,
}

/// A request's TTFT, decomposed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    pub request_id: String,
    pub point_id: i64,
    /// When the client scheduled and sent the request (ns, coordinator clock).
    pub scheduled_ns: u64,
    pub sent_ns: u64,
    /// Client TTFT from the scheduled time (includes client_wait).
    pub ttft_ms: f64,
    pub components: Vec<Component>,
    /// ttft_ms − Σ components (clock error, rounding).
    pub residual_ms: f64,
    pub prefill_service: Option<String>,
    pub decode_service: Option<String>,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub decode: DecodeSplit,
    pub notes: Vec<String>,
}

impl Breakdown {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.ms)
    }
}

/// Host clock → coordinator clock: the offset (host − coordinator, ns) of a host.
pub type Offsets = HashMap<String, i64>;

const CLIENT: &str = "client record";
const P_SPAN: &str = "P llm_request span (OTLP)";
const D_BLOCK: &str = "D per-request metrics block";
const D_SPAN: &str = "D llm_request span (OTLP)";
const CLOCKS: &str = "client clock vs span start (offset-corrected)";
const NIXL: &str =
    "D queue time split by prompt tokens × bytes/token ÷ NIXL bandwidth (vllm:nixl_* deltas)";

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn num(v: Option<&serde_json::Value>, key: &str) -> Option<f64> {
    v?.get(key)?.as_f64().filter(|x| x.is_finite() && *x >= 0.0)
}

/// Decomposes one successful request. `kv`: rates by decode service ("" = any);
/// `first_on_pair`: this request was the first of its P–D pair, so its D queue holds
/// the NIXL handshake: the part of it beyond the transfer and beyond the given typical
/// wait of the other requests at this point (their median `d_wait`) is the handshake.
pub fn decompose(
    j: &Joined<'_>,
    kv: &HashMap<String, KvRate>,
    offsets: &Offsets,
    first_on_pair: Option<f64>,
) -> Option<Breakdown> {
    let r = &j.client.record;
    if r.error.is_some() {
        return None;
    }
    let first = r.first_token_ns.or(r.chunks.first().map(|c| c.at_ns))? as i64;
    let (sched, send) = (r.scheduled_ns as i64, r.send_ns as i64);
    let mut notes = Vec::new();
    let mut to_coord = |s: &crate::analysis::otlp::RequestSpan, t: i64| -> i64 {
        match s.host.as_deref().and_then(|h| offsets.get(h)) {
            Some(off) => t - off,
            None => {
                let n = format!(
                    "no clock offset for host {:?}: its span times are taken as the coordinator's clock",
                    s.host.as_deref().unwrap_or("?")
                );
                if !notes.contains(&n) {
                    notes.push(n);
                }
                t
            }
        }
    };
    let m = j.client.server_metrics.as_ref();
    let d = j.decode;
    let d_queue = num(m, "queue_time_ms")
        .map(|v| (v, D_BLOCK))
        .or_else(|| d.and_then(|s| s.queue_s).map(|v| (v * 1e3, D_SPAN)));
    let d_step = num(m, "time_to_first_token_ms")
        .map(|v| (v, D_BLOCK))
        .or_else(|| d.and_then(|s| s.prefill_s).map(|v| (v * 1e3, D_SPAN)));
    let mut c = vec![Component {
        name: "client_wait",
        ms: ms(send - sched),
        source: CLIENT,
    }];
    let d_arrival = d.and_then(|s| s.start_ns.map(|t| to_coord(s, t)));
    let p = j.prefill;
    match (p, d_arrival) {
        (Some(ps), Some(d_arr)) if ps.start_ns.is_some() => {
            let p_arr = to_coord(ps, ps.start_ns.unwrap_or_default());
            let queue = ps.queue_s.unwrap_or(0.0) * 1e3;
            let prefill = ps
                .prefill_s
                .or(ps.e2e_s.map(|e| e - ps.queue_s.unwrap_or(0.0)))
                .unwrap_or(0.0)
                * 1e3;
            c.push(Component {
                name: "ingress",
                ms: ms(p_arr - send),
                source: CLOCKS,
            });
            c.push(Component {
                name: "p_queue",
                ms: queue,
                source: P_SPAN,
            });
            c.push(Component {
                name: "p_prefill",
                ms: prefill,
                source: P_SPAN,
            });
            c.push(Component {
                name: "handoff",
                ms: ms(d_arr - p_arr) - queue - prefill,
                source: "P span end → D span start (proxy, network)",
            });
        }
        (_, Some(d_arr)) => {
            c.push(Component {
                name: "upstream",
                ms: ms(d_arr - send),
                source: "client sent → D span start (no prefill span: proxy, P queue, P prefill, network together)",
            });
        }
        _ => {}
    }
    let prompt = r.input_tokens;
    if let Some((q, src)) = d_queue {
        let rate = d.and_then(|s| kv.get(&s.service)).or_else(|| kv.get(""));
        match rate {
            Some(k) if k.bytes_per_s > 0.0 => {
                let est = prompt as f64 * k.bytes_per_token / k.bytes_per_s * 1e3;
                let xfer = est.min(q);
                let rest = q - xfer;
                let hs = match first_on_pair {
                    Some(typical) if rest - typical > 1.0 => rest - typical.max(0.0),
                    _ => 0.0,
                };
                c.push(Component {
                    name: "kv_handshake",
                    ms: hs,
                    source: "first request of its P–D pair: D queue beyond the transfer and the typical wait",
                });
                c.push(Component {
                    name: "kv_transfer",
                    ms: xfer,
                    source: NIXL,
                });
                c.push(Component {
                    name: "d_wait",
                    ms: rest - hs,
                    source: src,
                });
            }
            _ => {
                notes.push(
                    "no NIXL metrics: D's queue time (capacity wait + KV transfer) is not split"
                        .into(),
                );
                c.push(Component {
                    name: "d_queue",
                    ms: q,
                    source: src,
                });
            }
        }
    }
    if let Some((s, src)) = d_step {
        c.push(Component {
            name: "d_first_step",
            ms: s,
            source: src,
        });
    }
    let sum_before_back: f64 = c.iter().map(|x| x.ms).sum();
    let ttft = ms(first - sched);
    if d_arrival.is_some() {
        c.push(Component {
            name: "network_back",
            ms: ttft - sum_before_back,
            source: "D first token (span start + queue + first step) → client first chunk",
        });
    } else if d_queue.is_some() {
        // No D arrival time: everything before D's queue is one block.
        c.insert(
            1,
            Component {
                name: "upstream",
                ms: ttft - sum_before_back,
                source:
                    "client TTFT minus D's reported times (no spans: proxy, P, network together)",
            },
        );
    }
    let residual = ttft - c.iter().map(|x| x.ms).sum::<f64>();
    Some(Breakdown {
        request_id: j.client.request_id.clone(),
        point_id: j.client.point_id,
        scheduled_ns: r.scheduled_ns,
        sent_ns: r.send_ns,
        ttft_ms: ttft,
        components: c,
        residual_ms: residual,
        prefill_service: p.map(|s| s.service.clone()),
        decode_service: d.map(|s| s.service.clone()),
        prompt_tokens: prompt,
        output_tokens: r.output_tokens,
        decode: decode_split(j),
        notes,
    })
}

fn decode_split(j: &Joined<'_>) -> DecodeSplit {
    let r = &j.client.record;
    let n = r.output_tokens;
    let chunks = &r.chunks;
    let client_tpot = match (chunks.first(), chunks.last()) {
        (Some(a), Some(b)) if n > 1 => {
            Some((b.at_ns.saturating_sub(a.at_ns)) as f64 / 1e6 / (n - 1) as f64)
        }
        _ => None,
    };
    let engine = num(j.client.server_metrics.as_ref(), "mean_itl_ms").or_else(|| {
        let s = j.decode?;
        (n > 1).then(|| s.decode_s.map(|d| d * 1e3 / (n - 1) as f64))?
    });
    let mut bursts: Vec<u64> = chunks.iter().map(|c| c.at_ns).collect();
    bursts.dedup();
    let mut gaps: Vec<f64> = bursts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64 / 1e6)
        .collect();
    DecodeSplit {
        client_tpot_ms: client_tpot,
        engine_itl_ms: engine,
        streaming_overhead_ms: client_tpot.zip(engine).map(|(c, e)| c - e),
        tokens_per_burst: (!bursts.is_empty()).then(|| n as f64 / bursts.len() as f64),
        burst_gap_p50_ms: servescope_loadgen::stats::percentile(&mut gaps, 50.0),
    }
}

/// Marks the first request (by D arrival, else by send time) of every P–D pair.
pub fn first_on_pair(joined: &[Joined<'_>]) -> Vec<bool> {
    type Pair<'a> = (Option<&'a str>, Option<&'a str>);
    let mut first: HashMap<Pair<'_>, (i64, usize)> = HashMap::new();
    for (i, j) in joined.iter().enumerate() {
        if j.client.record.error.is_some() {
            continue;
        }
        let key = (
            j.prefill.map(|s| s.service.as_str()),
            j.decode.map(|s| s.service.as_str()),
        );
        let t = j
            .decode
            .and_then(|s| s.start_ns)
            .unwrap_or(j.client.record.send_ns as i64);
        let e = first.entry(key).or_insert((t, i));
        if t < e.0 {
            *e = (t, i);
        }
    }
    let mut v = vec![false; joined.len()];
    for (_, i) in first.values() {
        v[*i] = true;
    }
    v
}
