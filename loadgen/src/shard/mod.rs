//! One shard of a distributed load: what a coordinator asks an agent to send
//! ([`ShardSpec`]; on the wire the agent API's `LoadShardSpec`, converted by the
//! `From`/`TryFrom` impls of `wire`), running it ([`run_shard`]), and the
//! per-request records streamed back ([`ShardRecord`]). Times in the records are ns on the
//! executing host's clock; the coordinator moves them onto its own with that host's
//! measured offset before pooling shards.

mod wire;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::chunk::Usage;
use crate::http::HttpClient;
use crate::metrics::RequestRecord;
use crate::request::{execute, Api, Clock, Outcome, Prompt, Target};
use crate::schedule::{run, Arrival, Plan, PlanError};
use crate::workload::{PrefixRepetition, PrefixSpec, RandomWorkload, TokenCounter, Workload};

/// Requests one shard may send at most.
pub const MAX_SHARD_REQUESTS: usize = 1_000_000;
/// Longest shard.
pub const MAX_SHARD_DURATION: Duration = Duration::from_secs(6 * 3600);
/// Longest wait for a shard's start time.
pub const MAX_START_DELAY: Duration = Duration::from_secs(300);

/// How requests arrive at a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ShardArrival {
    Closed {
        concurrency: usize,
    },
    Open {
        rate: f64,
        burstiness: f64,
        max_concurrency: Option<usize>,
    },
}

/// What to send (workloads whose prompts are generated, not read from a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dataset", rename_all = "snake_case")]
pub enum ShardWorkload {
    Random {
        input_tokens: u32,
        output_tokens: u32,
        ignore_eos: bool,
    },
    PrefixRepetition {
        num_prefixes: u32,
        prefix_len: u32,
        suffix_len: u32,
        output_tokens: u32,
        ignore_eos: bool,
    },
}

/// A shard to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// Base URL (`http://host:port`).
    pub endpoint: String,
    /// `completions` or `chat`.
    pub api: String,
    pub model: String,
    /// `x-request-id` = prefix + request index.
    pub request_id_prefix: String,
    pub arrival: ShardArrival,
    pub num_requests: Option<usize>,
    pub duration_s: Option<f64>,
    pub workload: ShardWorkload,
    /// Seed of prompts and arrivals (distinct per shard: no shared prompts).
    pub seed: u64,
    /// Request indices start here (distinct ranges per shard).
    pub index_offset: usize,
    /// Start at this time (ns since the epoch on the executing host's clock).
    pub start_at_ns: Option<u64>,
    pub max_connections: usize,
}

/// One finished request, as streamed back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: usize,
    pub request_id: String,
    pub record: RequestRecord,
    pub status: Option<u16>,
    pub usage: Option<Usage>,
    pub server_metrics: Option<serde_json::Value>,
    pub dispatch_lag_ns: u64,
    pub error_detail: Option<String>,
}

impl From<&Outcome> for ShardRecord {
    fn from(o: &Outcome) -> Self {
        ShardRecord {
            index: o.index,
            request_id: o.request_id.clone(),
            record: o.record.clone(),
            status: o.status,
            usage: o.usage,
            server_metrics: o.server_metrics.clone(),
            dispatch_lag_ns: u64::try_from(o.dispatch_lag.as_nanos()).unwrap_or(u64::MAX),
            error_detail: o.error_detail.clone(),
        }
    }
}

impl ShardRecord {
    /// Back to an [`Outcome`], with every time moved by `-offset_ns` (host clock →
    /// coordinator clock, offset = host − coordinator).
    pub fn into_outcome(self, offset_ns: i64) -> Outcome {
        let mv = |t: u64| (t as i64).saturating_sub(offset_ns).max(0) as u64;
        let mut r = self.record;
        r.scheduled_ns = mv(r.scheduled_ns);
        r.send_ns = mv(r.send_ns);
        r.first_byte_ns = r.first_byte_ns.map(mv);
        r.first_token_ns = r.first_token_ns.map(mv);
        r.last_byte_ns = r.last_byte_ns.map(mv);
        r.finished_ns = mv(r.finished_ns);
        for c in &mut r.chunks {
            c.at_ns = mv(c.at_ns);
        }
        Outcome {
            index: self.index,
            request_id: self.request_id,
            record: r,
            status: self.status,
            usage: self.usage,
            server_metrics: self.server_metrics,
            dispatch_lag: Duration::from_nanos(self.dispatch_lag_ns),
            text: None,
            error_detail: self.error_detail,
        }
    }
}

/// Why a shard could not run.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("shard spec: {0}")]
    Spec(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl ShardSpec {
    /// Checks bounds and shape; the message names the field.
    pub fn validate(&self) -> Result<(), ShardError> {
        let bad = |m: String| Err(ShardError::Spec(m));
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return bad(format!(
                "endpoint must be an http(s) URL (got {:?})",
                self.endpoint
            ));
        }
        if !matches!(self.api.as_str(), "completions" | "chat") {
            return bad(format!(
                "api must be completions or chat (got {:?})",
                self.api
            ));
        }
        match (self.num_requests, self.duration_s) {
            (None, None) => return bad("give num_requests or duration_s".into()),
            (Some(n), _) if n > MAX_SHARD_REQUESTS => {
                return bad(format!(
                    "num_requests {n} is over the {MAX_SHARD_REQUESTS} a shard may send"
                ))
            }
            (_, Some(d))
                if !(d.is_finite() && d > 0.0 && d <= MAX_SHARD_DURATION.as_secs_f64()) =>
            {
                return bad(format!(
                    "duration_s must be within (0, {}] (got {d})",
                    MAX_SHARD_DURATION.as_secs()
                ))
            }
            _ => {}
        }
        if self.max_connections == 0 || self.max_connections > 65_536 {
            return bad(format!(
                "max_connections must be within 1..=65536 (got {})",
                self.max_connections
            ));
        }
        if self.request_id_prefix.len() > 128
            || !self.request_id_prefix.bytes().all(|b| b.is_ascii_graphic())
        {
            return bad("request_id_prefix must be at most 128 visible ASCII characters".into());
        }
        Ok(())
    }

    fn workload(&self) -> Workload {
        match &self.workload {
            ShardWorkload::Random {
                input_tokens,
                output_tokens,
                ignore_eos,
            } => RandomWorkload {
                input_tokens: *input_tokens,
                output_tokens: *output_tokens,
                ignore_eos: *ignore_eos,
                seed: self.seed,
            }
            .into(),
            ShardWorkload::PrefixRepetition {
                num_prefixes,
                prefix_len,
                suffix_len,
                output_tokens,
                ignore_eos,
            } => Workload::PrefixRepetition(PrefixRepetition::new(
                PrefixSpec {
                    num_prefixes: *num_prefixes,
                    prefix_len: *prefix_len,
                    suffix_len: *suffix_len,
                    output_tokens: *output_tokens,
                    ignore_eos: *ignore_eos,
                    seed: self.seed,
                    reuse_prefixes: false,
                },
                TokenCounter::words(),
            )),
        }
    }

    fn plan(&self) -> Plan {
        Plan {
            arrival: match &self.arrival {
                ShardArrival::Closed { concurrency } => Arrival::Closed {
                    concurrency: *concurrency,
                },
                ShardArrival::Open {
                    rate,
                    burstiness,
                    max_concurrency,
                } => Arrival::Open {
                    rate: *rate,
                    burstiness: *burstiness,
                    max_concurrency: *max_concurrency,
                },
            },
            num_requests: self.num_requests,
            duration: self.duration_s.map(Duration::from_secs_f64),
            seed: self.seed,
        }
    }
}

/// Runs `spec` (after waiting for its start time); `on_record` sees each request as
/// it finishes. Returns how many were sent.
pub async fn run_shard(
    spec: &ShardSpec,
    on_record: impl Fn(ShardRecord) + Send + Sync + 'static,
) -> Result<usize, ShardError> {
    spec.validate()?;
    let plan = spec.plan();
    plan.validate()?;
    if let Some(at) = spec.start_at_ns {
        let now = crate::now_ns();
        let wait = Duration::from_nanos(at.saturating_sub(now));
        if wait > MAX_START_DELAY {
            return Err(ShardError::Spec(format!(
                "start_at_ns is {wait:?} away (more than {MAX_START_DELAY:?}): clocks disagree or the spec is stale"
            )));
        }
        tokio::time::sleep(wait).await;
    }
    let target = Arc::new(Target {
        base_url: spec.endpoint.clone(),
        api: if spec.api == "chat" {
            Api::Chat
        } else {
            Api::Completions
        },
        model: spec.model.clone(),
        request_id_prefix: spec.request_id_prefix.clone(),
        sse_limits: Default::default(),
    });
    let workload = Arc::new(spec.workload());
    let client = HttpClient::new(spec.max_connections);
    let clock = Clock::new();
    let offset = spec.index_offset;
    let on_record = Arc::new(on_record);
    let out = run(&plan, |mut slot| {
        let (client, target, w, on_record) = (
            client.clone(),
            Arc::clone(&target),
            Arc::clone(&workload),
            Arc::clone(&on_record),
        );
        async move {
            slot.index += offset;
            let p: Prompt = w.prompt(slot.index);
            let o = execute(&client, &target, &p, slot, &clock).await;
            on_record(ShardRecord::from(&o));
        }
    })
    .await?;
    Ok(out.len())
}
