//! Joining a request's client record with what the engines said about it, by
//! `x-request-id`: the decode instance's per-request `metrics` block (it rides on the
//! stream the client reads), and the `llm_request` OTLP spans of the prefill and the
//! decode instance.
//!
//! vLLM names its internal request `cmpl-<x-request-id>-<n>` (`chatcmpl-` for chat),
//! so a span's `gen_ai.request.id` is reduced to the client's id before matching.
//! In pull-mode P/D every request visits P first and D second: of the spans of one
//! request, the earliest is P's and the latest D's. A request with one span ran on
//! one engine (not disaggregated): that span is its decode side.

use std::collections::HashMap;

use serde::Serialize;

use crate::analysis::otlp::RequestSpan;
use crate::store::StoredRequest;

/// One request with everything known about it.
#[derive(Debug, Clone)]
pub struct Joined<'a> {
    pub client: &'a StoredRequest,
    pub prefill: Option<&'a RequestSpan>,
    pub decode: Option<&'a RequestSpan>,
}

/// How much joined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JoinStats {
    pub requests: usize,
    pub with_metrics_block: usize,
    pub with_prefill_span: usize,
    pub with_decode_span: usize,
    /// Spans whose request id matched no client request.
    pub unmatched_spans: usize,
    /// Requests named by a line of the engine logs given (`Added request …`).
    pub with_engine_log: usize,
}

/// The client's `x-request-id` inside a vLLM request id: `cmpl-ID-0` → `ID`.
pub fn client_id(engine_id: &str) -> &str {
    let s = engine_id
        .strip_prefix("chatcmpl-")
        .or_else(|| engine_id.strip_prefix("cmpl-"))
        .unwrap_or(engine_id);
    match s.rsplit_once('-') {
        Some((head, tail))
            if !head.is_empty() && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) =>
        {
            head
        }
        _ => s,
    }
}

/// Joins `requests` with `spans`.
pub fn join<'a>(
    requests: &'a [StoredRequest],
    spans: &'a [RequestSpan],
) -> (Vec<Joined<'a>>, JoinStats) {
    let ids: HashMap<&str, usize> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (r.request_id.as_str(), i))
        .collect();
    let mut by_req: HashMap<usize, Vec<&RequestSpan>> = HashMap::new();
    let mut stats = JoinStats {
        requests: requests.len(),
        ..Default::default()
    };
    for s in spans {
        let Some(rid) = s.request_id.as_deref() else {
            stats.unmatched_spans += 1;
            continue;
        };
        // Exact first: a client id may itself end in "-<digits>".
        match ids.get(rid).or_else(|| ids.get(client_id(rid))) {
            Some(&i) => by_req.entry(i).or_default().push(s),
            None => stats.unmatched_spans += 1,
        }
    }
    let joined = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut v = by_req.remove(&i).unwrap_or_default();
            v.sort_by_key(|s| s.start_ns.unwrap_or(i64::MAX));
            let (prefill, decode) = match v.len() {
                0 => (None, None),
                1 => (None, Some(v[0])),
                n => (Some(v[0]), Some(v[n - 1])),
            };
            stats.with_metrics_block += usize::from(r.server_metrics.is_some());
            stats.with_prefill_span += usize::from(prefill.is_some());
            stats.with_decode_span += usize::from(decode.is_some());
            Joined {
                client: r,
                prefill,
                decode,
            }
        })
        .collect();
    (joined, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vllm_ids_reduce_to_the_client_id() {
        assert_eq!(client_id("cmpl-servescope-12-0"), "servescope-12");
        assert_eq!(client_id("chatcmpl-abc-3"), "abc");
        assert_eq!(client_id("abc"), "abc");
        assert_eq!(client_id("cmpl-x-y"), "x-y");
        assert_eq!(client_id("-0"), "-0");
        assert_eq!(client_id(""), "");
    }
}
