//! An experiment file expanded into points: deployment × lengths × mode × load ×
//! trial, each with a stable key (so a resumed run knows what is stored) and the
//! shard specs that send it.

use serde::Serialize;
use servescope_loadgen::shard::{ShardArrival, ShardSpec, ShardWorkload};

use super::file::{parse_lengths, ExperimentFile, Mode};

/// The load of a point (after per-replica scaling).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Load {
    Closed { concurrency: usize },
    Open { rate: f64 },
}

/// One point to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub key: String,
    pub deployment: usize,
    pub input: u32,
    pub output: u32,
    pub mode: Mode,
    /// The load as written in the file (per replica when scaled).
    pub nominal: f64,
    pub load: Load,
    pub trial: usize,
    pub label: String,
}

pub(super) fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Mixed => "mixed",
        Mode::PrefillOnly => "prefill-only",
        Mode::DecodeOnly => "decode-only",
    }
}

/// Every point of the file, in run order (deployment by deployment).
pub fn expand(f: &ExperimentFile) -> Vec<Planned> {
    let w = &f.workload;
    let mut out = Vec::new();
    for (di, d) in f.deployments.iter().enumerate() {
        let scale = if w.concurrency_per_replica {
            d.replicas as usize
        } else {
            1
        };
        let loads: Vec<(f64, Load)> = if !w.concurrency.is_empty() {
            w.concurrency
                .iter()
                .map(|&c| {
                    (
                        c as f64,
                        Load::Closed {
                            concurrency: c * scale,
                        },
                    )
                })
                .collect()
        } else {
            w.request_rate
                .iter()
                .map(|&r| {
                    (
                        r,
                        Load::Open {
                            rate: r * scale as f64,
                        },
                    )
                })
                .collect()
        };
        for l in &w.lengths {
            let Some((input, output)) = parse_lengths(l) else {
                continue;
            };
            for &mode in &w.modes {
                for &(nominal, load) in &loads {
                    for trial in 0..w.trials {
                        let ld = match load {
                            Load::Closed { concurrency } => format!("c{concurrency}"),
                            Load::Open { rate } => format!("r{rate}"),
                        };
                        let key = format!(
                            "{}/{input}:{output}/{}/{ld}/t{trial}",
                            d.name,
                            mode_name(mode)
                        );
                        out.push(Planned {
                            label: key.clone(),
                            key,
                            deployment: di,
                            input,
                            output,
                            mode,
                            nominal,
                            load,
                            trial,
                        });
                    }
                }
            }
        }
    }
    out
}

/// A 64-bit FNV-1a hash (stable seeds from keys).
pub fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Splits `n` into `k` near-equal parts (the first get the remainder).
fn split(n: usize, k: usize, i: usize) -> usize {
    n / k + usize::from(i < n % k)
}

/// The shard specs of point `p` (index `seq` in the experiment) over `shards` shards.
/// Seeds differ per shard (no prompt is sent twice), index ranges do not overlap.
pub fn shard_specs(f: &ExperimentFile, p: &Planned, seq: usize, shards: usize) -> Vec<ShardSpec> {
    let d = &f.deployments[p.deployment];
    let w = &f.workload;
    let workload = match p.mode {
        Mode::Mixed => ShardWorkload::Random {
            input_tokens: p.input,
            output_tokens: p.output,
            ignore_eos: true,
        },
        Mode::PrefillOnly => ShardWorkload::Random {
            input_tokens: p.input,
            output_tokens: 1,
            ignore_eos: true,
        },
        Mode::DecodeOnly => {
            // One shared prefix (cached after the first request): prefill is negligible.
            let suffix = (p.input / 16).clamp(1, 16).min(p.input);
            ShardWorkload::PrefixRepetition {
                num_prefixes: 1,
                prefix_len: p.input - suffix,
                suffix_len: suffix,
                output_tokens: p.output,
                ignore_eos: true,
            }
        }
    };
    let shards = shards.max(1);
    let mut specs = Vec::new();
    for i in 0..shards {
        let arrival = match p.load {
            Load::Closed { concurrency } => {
                let c = split(concurrency, shards, i);
                if c == 0 {
                    continue;
                }
                ShardArrival::Closed { concurrency: c }
            }
            Load::Open { rate } => ShardArrival::Open {
                rate: rate / shards as f64,
                burstiness: 1.0,
                max_concurrency: None,
            },
        };
        let num_requests = w.num_prompts.map(|n| split(n, shards, i));
        if num_requests == Some(0) {
            continue;
        }
        let max_connections = match arrival {
            ShardArrival::Closed { concurrency } => concurrency,
            ShardArrival::Open { .. } => 1024,
        };
        specs.push(ShardSpec {
            endpoint: d.endpoint.clone(),
            api: w.api.clone(),
            model: w.model.clone(),
            request_id_prefix: format!(
                "{}-p{seq}-",
                f.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ),
            arrival,
            num_requests,
            duration_s: w.duration_s,
            workload: workload.clone(),
            seed: hash(&p.key) ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            index_offset: i * 10_000_000,
            start_at_ns: None,
            max_connections,
        });
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_keys_scaling_and_shards() {
        let f = super::super::file::parse(
            "name: e\ndeployments:\n  - {name: a, endpoint: 'http://x:1'}\n  - {name: b, endpoint: 'http://x:2', replicas: 2}\nworkload:\n  model: m\n  concurrency: [3]\n  concurrency_per_replica: true\n  lengths: ['8:4']\n  modes: [mixed, prefill-only]\n  num_prompts: 7\n  trials: 2\n",
        )
        .unwrap();
        let pts = expand(&f);
        assert_eq!(pts.len(), 2 * 2 * 2);
        assert_eq!(pts[0].key, "a/8:4/mixed/c3/t0");
        let b = pts
            .iter()
            .find(|p| p.key == "b/8:4/prefill-only/c6/t1")
            .unwrap();
        assert_eq!(b.load, Load::Closed { concurrency: 6 });
        let s = shard_specs(&f, b, 5, 2);
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().map(|s| s.num_requests.unwrap()).sum::<usize>(), 7);
        assert_eq!(s[0].arrival, ShardArrival::Closed { concurrency: 3 });
        assert_ne!(s[0].seed, s[1].seed);
        assert!(matches!(
            s[0].workload,
            ShardWorkload::Random {
                output_tokens: 1,
                ..
            }
        ));
        assert_eq!(s[1].index_offset, 10_000_000);
    }
}
