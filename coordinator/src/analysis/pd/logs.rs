//! Engine log lines that matter to P/D attribution, for deployments whose metrics are
//! not scraped (or to cross-check them):
//!
//! * `KV Transfer metrics: Num successful transfers=12, Avg xfer time (ms)=9.862, …,
//!   Avg MB per transfer=70.0, Throughput (MB/s)=7097.952, …, Num failed transfers=0,
//!   Num KV expired reqs=0` — vLLM's NIXL stats per logging interval (0.11.1+; 0.11.0
//!   prints only `num_successful_transfers=N`). "MB" is MiB (vLLM divides by 2²⁰);
//!   the throughput is MB over summed transfer time, not wall clock.
//! * lines carrying request ids: `Added request cmpl-<id>-0.` (`--enable-log-requests`),
//!   `Aborted request …`, `Releasing expired KV blocks for request …`,
//!   `NIXL transfer failure: …`.
//!
//! Lines are untrusted: each is bounded, unknown fields are ignored, a malformed
//! number drops that field only.

use serde::Serialize;

use super::join::client_id;

/// Longest line read (longer ones are skipped and counted).
pub const MAX_LINE: usize = 64 << 10;
const MIB: f64 = 1_048_576.0;

/// KV stats summed over the `KV Transfer metrics` lines read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KvFromLogs {
    pub lines: usize,
    pub transfers: f64,
    /// Σ transfers × average MB per transfer (bytes).
    pub bytes: f64,
    /// Σ transfers × average transfer time (s).
    pub xfer_s: f64,
    pub failed: f64,
    pub expired: f64,
}

impl KvFromLogs {
    /// Bytes over summed transfer time, GB/s.
    pub fn gbps(&self) -> Option<f64> {
        (self.xfer_s > 0.0).then(|| self.bytes / self.xfer_s / 1e9)
    }
}

/// What a request-id line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestEvent {
    Added,
    Aborted,
    KvExpired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestLine {
    /// The client's `x-request-id` (vLLM's id reduced).
    pub request_id: String,
    pub event: RequestEvent,
    pub line: usize,
}

/// One engine log, read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EngineLog {
    pub kv: KvFromLogs,
    pub requests: Vec<RequestLine>,
    /// `NIXL transfer failure` lines.
    pub transfer_failures: usize,
    pub lines: usize,
    pub skipped_long: usize,
}

fn field(s: &str, key: &str) -> Option<f64> {
    let i = s.find(key)?;
    let rest = &s[i + key.len()..];
    let end = rest.find(',').unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// The id after `marker` up to whitespace, '.', ':' or ','.
fn id_after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let i = line.find(marker)?;
    let rest = line[i + marker.len()..].trim_start();
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .unwrap_or(rest.len());
    let id = rest[..end].trim_end_matches('.');
    (!id.is_empty()).then_some(id)
}

/// Reads one log's text.
pub fn parse(text: &str) -> EngineLog {
    let mut out = EngineLog::default();
    for (i, line) in text.lines().enumerate() {
        out.lines += 1;
        if line.len() > MAX_LINE {
            out.skipped_long += 1;
            continue;
        }
        if let Some(p) = line.find("KV Transfer metrics:") {
            let s = &line[p..];
            let n = field(s, "Num successful transfers=")
                .or_else(|| field(s, "num_successful_transfers="));
            let Some(n) = n else { continue };
            let k = &mut out.kv;
            k.lines += 1;
            k.transfers += n;
            if let (Some(mb), Some(ms)) = (
                field(s, "Avg MB per transfer="),
                field(s, "Avg xfer time (ms)="),
            ) {
                k.bytes += n * mb * MIB;
                k.xfer_s += n * ms / 1e3;
            }
            k.failed += field(s, "Num failed transfers=").unwrap_or(0.0);
            k.expired += field(s, "Num KV expired reqs=").unwrap_or(0.0);
            continue;
        }
        if line.contains("NIXL transfer failure") {
            out.transfer_failures += 1;
        }
        for (marker, event) in [
            ("Added request ", RequestEvent::Added),
            ("Aborted request ", RequestEvent::Aborted),
            (
                "Releasing expired KV blocks for request ",
                RequestEvent::KvExpired,
            ),
        ] {
            if let Some(id) = id_after(line, marker) {
                out.requests.push(RequestLine {
                    request_id: client_id(id).to_string(),
                    event,
                    line: i + 1,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_transfer_metrics_lines_sum_up() {
        let log = "\
(EngineCore_DP0 pid=7) INFO 11-02 10:00:01 [metrics.py:90] KV Transfer metrics: Num successful transfers=1, Avg xfer time (ms)=9.862, P90 xfer time (ms)=9.862, Avg post time (ms)=5.693, P90 post time (ms)=5.693, Avg MB per transfer=70.0, Throughput (MB/s)=7097.952, Avg number of descriptors=56.0
(EngineCore_DP0 pid=7) INFO 11-02 10:00:11 [metrics.py:90] KV Transfer metrics: Num successful transfers=3, Avg xfer time (ms)=10.0, P90 xfer time (ms)=12.0, Avg post time (ms)=1.0, P90 post time (ms)=1.0, Avg MB per transfer=10.0, Throughput (MB/s)=1000.0, Avg number of descriptors=5.0, Num failed transfers=2, Num KV expired reqs=1, Num notifs after expiry=0
INFO 10-15 14:59:46 [nixl_connector.py:1] KV Transfer metrics: num_successful_transfers=4
";
        let l = parse(log);
        assert_eq!(l.kv.lines, 3);
        assert_eq!(l.kv.transfers, 8.0);
        assert!((l.kv.bytes - (70.0 + 30.0) * MIB).abs() < 1.0);
        assert!((l.kv.xfer_s - (0.009862 + 0.030)).abs() < 1e-9);
        assert_eq!((l.kv.failed, l.kv.expired), (2.0, 1.0));
        // The first line alone: 70 MiB in 9.862 ms, as its Throughput (MB/s) says.
        let one = parse(log.lines().next().unwrap());
        assert!((one.kv.gbps().unwrap() * 1e9 / MIB - 7097.952).abs() < 0.01);
    }

    #[test]
    fn request_lines_give_client_ids() {
        let log = "\
\x1b[36m(ServeReplica:default:LLMServer:llama pid=279575)\x1b[0m INFO 10-15 14:59:46 [async_llm.py:344] Added request chatcmpl-servescope-7-0.
INFO 10-15 14:59:47 [async_llm.py:400] Aborted request cmpl-abc-1.
WARNING 10-15 15:00:17 [nixl.py:9] Releasing expired KV blocks for request cmpl-x-9-0 which were retrieved by 0 remote worker(s) before lease expired.
ERROR 10-15 15:00:18 [nixl.py:9] NIXL transfer failure: NIXL_ERR_BACKEND | Context: …
Added request
";
        let l = parse(log);
        let got: Vec<(&str, RequestEvent)> = l
            .requests
            .iter()
            .map(|r| (r.request_id.as_str(), r.event))
            .collect();
        assert_eq!(
            got,
            [
                ("servescope-7", RequestEvent::Added),
                ("abc", RequestEvent::Aborted),
                ("x-9", RequestEvent::KvExpired)
            ]
        );
        assert_eq!(l.transfer_failures, 1);
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        let mut g = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = "KV Transfer metrics: Num successful transfers=,()ms.-e9 Added request Releasing expired \n";
        let chars: Vec<char> = alphabet.chars().collect();
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(g % 300) {
                g ^= g << 13;
                g ^= g >> 7;
                g ^= g << 17;
                s.push(chars[(g % chars.len() as u64) as usize]);
            }
            let l = parse(&s);
            assert!(l.kv.transfers.is_finite() && l.kv.bytes.is_finite());
        }
        let long = "x".repeat(MAX_LINE + 1);
        assert_eq!(parse(&long).skipped_long, 1);
    }
}
