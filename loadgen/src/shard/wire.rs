//! A [`ShardSpec`] on the wire: the `LoadShardSpec` message of the agent API, and
//! the one place the two convert. Reading a message checks what the types cannot
//! (a missing oneof, an unknown API, an index that does not fit) and names the field.

use servescope_proto::v1::{
    load_shard_spec, ClosedArrival, LoadApi, LoadShardSpec, OpenArrival, PrefixRepetitionWorkload,
    RandomWorkload,
};

use super::{ShardArrival, ShardError, ShardSpec, ShardWorkload};

impl From<&ShardSpec> for LoadShardSpec {
    /// An `api` other than completions or chat goes out as unspecified, which the
    /// receiving side refuses.
    fn from(s: &ShardSpec) -> Self {
        let api = match s.api.as_str() {
            "completions" => LoadApi::Completions,
            "chat" => LoadApi::Chat,
            _ => LoadApi::Unspecified,
        };
        let arrival = match &s.arrival {
            ShardArrival::Closed { concurrency } => {
                load_shard_spec::Arrival::Closed(ClosedArrival {
                    concurrency: *concurrency as u64,
                })
            }
            ShardArrival::Open {
                rate,
                burstiness,
                max_concurrency,
            } => load_shard_spec::Arrival::Open(OpenArrival {
                rate: *rate,
                burstiness: *burstiness,
                max_concurrency: max_concurrency.map(|c| c as u64),
            }),
        };
        let workload = match &s.workload {
            ShardWorkload::Random {
                input_tokens,
                output_tokens,
                ignore_eos,
            } => load_shard_spec::Workload::Random(RandomWorkload {
                input_tokens: *input_tokens,
                output_tokens: *output_tokens,
                ignore_eos: *ignore_eos,
            }),
            ShardWorkload::PrefixRepetition {
                num_prefixes,
                prefix_len,
                suffix_len,
                output_tokens,
                ignore_eos,
            } => load_shard_spec::Workload::PrefixRepetition(PrefixRepetitionWorkload {
                num_prefixes: *num_prefixes,
                prefix_len: *prefix_len,
                suffix_len: *suffix_len,
                output_tokens: *output_tokens,
                ignore_eos: *ignore_eos,
            }),
        };
        LoadShardSpec {
            endpoint: s.endpoint.clone(),
            api: api as i32,
            model: s.model.clone(),
            request_id_prefix: s.request_id_prefix.clone(),
            arrival: Some(arrival),
            num_requests: s.num_requests.map(|n| n as u64),
            duration_s: s.duration_s,
            workload: Some(workload),
            seed: s.seed,
            index_offset: s.index_offset as u64,
            start_at_ns: s.start_at_ns,
            max_connections: u32::try_from(s.max_connections).unwrap_or(u32::MAX),
        }
    }
}

impl TryFrom<LoadShardSpec> for ShardSpec {
    type Error = ShardError;

    /// Shape only; bounds are [`ShardSpec::validate`]'s.
    fn try_from(m: LoadShardSpec) -> Result<Self, ShardError> {
        let api = match LoadApi::try_from(m.api) {
            Ok(LoadApi::Completions) => "completions",
            Ok(LoadApi::Chat) => "chat",
            other => {
                let got = other.map_or_else(
                    |_| format!("unknown value {}", m.api),
                    |a| a.as_str_name().to_string(),
                );
                return Err(ShardError::Spec(format!(
                    "api must be completions or chat (got {got})"
                )));
            }
        };
        let arrival = match m.arrival {
            Some(load_shard_spec::Arrival::Closed(c)) => ShardArrival::Closed {
                concurrency: index("arrival.closed.concurrency", c.concurrency)?,
            },
            Some(load_shard_spec::Arrival::Open(o)) => ShardArrival::Open {
                rate: o.rate,
                burstiness: o.burstiness,
                max_concurrency: o
                    .max_concurrency
                    .map(|c| index("arrival.open.max_concurrency", c))
                    .transpose()?,
            },
            None => return Err(ShardError::Spec("arrival is missing".into())),
        };
        let workload = match m.workload {
            Some(load_shard_spec::Workload::Random(r)) => ShardWorkload::Random {
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                ignore_eos: r.ignore_eos,
            },
            Some(load_shard_spec::Workload::PrefixRepetition(p)) => {
                ShardWorkload::PrefixRepetition {
                    num_prefixes: p.num_prefixes,
                    prefix_len: p.prefix_len,
                    suffix_len: p.suffix_len,
                    output_tokens: p.output_tokens,
                    ignore_eos: p.ignore_eos,
                }
            }
            None => return Err(ShardError::Spec("workload is missing".into())),
        };
        Ok(ShardSpec {
            endpoint: m.endpoint,
            api: api.into(),
            model: m.model,
            request_id_prefix: m.request_id_prefix,
            arrival,
            num_requests: m
                .num_requests
                .map(|n| index("num_requests", n))
                .transpose()?,
            duration_s: m.duration_s,
            workload,
            seed: m.seed,
            index_offset: index("index_offset", m.index_offset)?,
            start_at_ns: m.start_at_ns,
            max_connections: m.max_connections as usize,
        })
    }
}

/// A count or index that must fit this host's `usize`.
fn index(field: &str, v: u64) -> Result<usize, ShardError> {
    usize::try_from(v).map_err(|_| ShardError::Spec(format!("{field} {v} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ShardSpec {
        ShardSpec {
            endpoint: "http://127.0.0.1:8000".into(),
            api: "chat".into(),
            model: "m".into(),
            request_id_prefix: "p-".into(),
            arrival: ShardArrival::Open {
                rate: 2.5,
                burstiness: 0.5,
                max_concurrency: Some(7),
            },
            num_requests: Some(10),
            duration_s: Some(3.0),
            workload: ShardWorkload::PrefixRepetition {
                num_prefixes: 2,
                prefix_len: 30,
                suffix_len: 5,
                output_tokens: 4,
                ignore_eos: true,
            },
            seed: 9,
            index_offset: 100,
            start_at_ns: Some(123),
            max_connections: 8,
        }
    }

    #[test]
    fn round_trips_every_variant() {
        let a = spec();
        assert_eq!(ShardSpec::try_from(LoadShardSpec::from(&a)).unwrap(), a);
        let b = ShardSpec {
            api: "completions".into(),
            arrival: ShardArrival::Closed { concurrency: 3 },
            num_requests: None,
            start_at_ns: None,
            workload: ShardWorkload::Random {
                input_tokens: 8,
                output_tokens: 4,
                ignore_eos: false,
            },
            ..spec()
        };
        assert_eq!(ShardSpec::try_from(LoadShardSpec::from(&b)).unwrap(), b);
    }

    #[test]
    fn a_bad_message_names_the_field() {
        let err = |m: LoadShardSpec| ShardSpec::try_from(m).unwrap_err().to_string();
        let ok = LoadShardSpec::from(&spec());
        let e = err(LoadShardSpec::from(&ShardSpec {
            api: "embeddings".into(),
            ..spec()
        }));
        assert!(
            e.contains("api") && e.contains("LOAD_API_UNSPECIFIED"),
            "{e}"
        );
        assert!(err(LoadShardSpec {
            api: 9,
            ..ok.clone()
        })
        .contains("unknown value 9"));
        assert!(err(LoadShardSpec {
            arrival: None,
            ..ok.clone()
        })
        .contains("arrival"));
        assert!(err(LoadShardSpec {
            workload: None,
            ..ok
        })
        .contains("workload"));
    }
}
