//! What is asked: the prompts of a load run, and the counting probe.
//!
//! Workloads (`--dataset`): `random` (every request its own random text of exactly
//! `--input-len` tokens), `prefix-repetition` (vLLM's `prefix_repetition`: prompts
//! sharing a few random prefixes) and `sharegpt` (a ShareGPT JSON file). Lengths are
//! exact for a Hugging Face `tokenizer.json` given with `--tokenizer`; without one a
//! token is a whitespace-separated word (see [`tokenizer`]), which `servescope sim`
//! counts the same way.
//!
//! The runner reseeds the workload for every point and trial
//! ([`Workload::reseeded`]): random prompts never repeat across points (no accidental
//! prefix-cache hits); prefix-repetition keeps its prefixes within a point and draws
//! new ones per point unless told to reuse them; ShareGPT reorders its samples.

pub mod prefix;
pub mod random;
pub mod sharegpt;
pub mod tokenizer;

use std::path::PathBuf;

use serde_json::json;

use super::request::Prompt;

pub use prefix::{PrefixRepetition, PrefixSpec};
pub use random::RandomWorkload;
pub use sharegpt::{ShareGpt, ShareGptOptions, ShareGptStats};
pub use tokenizer::TokenCounter;

/// Why a workload could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid ShareGPT JSON: {detail}", path.display())]
    Json { path: PathBuf, detail: String },
    #[error("{}: no usable conversation after filtering: {detail}", path.display())]
    Empty { path: PathBuf, detail: String },
    #[error("{0}")]
    Tokenizer(String),
    #[error("{0}")]
    Invalid(String),
}

/// The prompts of a run.
#[derive(Debug, Clone)]
pub enum Workload {
    Random {
        spec: RandomWorkload,
        tokenizer: TokenCounter,
    },
    PrefixRepetition(PrefixRepetition),
    ShareGpt(ShareGpt),
}

impl From<RandomWorkload> for Workload {
    /// Random prompts counted in whitespace words.
    fn from(spec: RandomWorkload) -> Self {
        Workload::Random {
            spec,
            tokenizer: TokenCounter::words(),
        }
    }
}

impl Workload {
    /// The prompt of request `index` (deterministic for a seed).
    pub fn prompt(&self, index: usize) -> Prompt {
        match self {
            Workload::Random { spec, tokenizer } => spec.prompt_with(tokenizer, index),
            Workload::PrefixRepetition(p) => p.prompt(index),
            Workload::ShareGpt(s) => s.prompt(index),
        }
    }

    /// The prompts of requests `start..start + n`, made now (tokenizing can take a
    /// millisecond or more per prompt: better before a point than inside its latency).
    pub fn prepare(self, start: usize, n: usize) -> Prepared {
        let prompts = (start..start + n).map(|i| self.prompt(i)).collect();
        Prepared {
            workload: self,
            start,
            prompts,
        }
    }

    /// `random`, `prefix-repetition` or `sharegpt`.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Random { .. } => "random",
            Workload::PrefixRepetition(_) => "prefix-repetition",
            Workload::ShareGpt(_) => "sharegpt",
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            Workload::Random { spec, .. } => spec.seed,
            Workload::PrefixRepetition(p) => p.seed(),
            Workload::ShareGpt(s) => s.seed(),
        }
    }

    /// The same workload for another point or trial: new random prompts; new
    /// suffixes and (unless reused) new prefixes; ShareGPT samples reordered.
    pub fn reseeded(&self, seed: u64) -> Workload {
        match self {
            Workload::Random { spec, tokenizer } => Workload::Random {
                spec: RandomWorkload {
                    seed,
                    ..spec.clone()
                },
                tokenizer: tokenizer.clone(),
            },
            Workload::PrefixRepetition(p) => Workload::PrefixRepetition(p.reseeded(seed)),
            Workload::ShareGpt(s) => Workload::ShareGpt(s.reseeded(seed)),
        }
    }

    /// True when lengths are counted by a real tokenizer.
    pub fn exact(&self) -> bool {
        match self {
            Workload::Random { tokenizer, .. } => tokenizer.is_exact(),
            Workload::PrefixRepetition(p) => p.tokenizer().is_exact(),
            Workload::ShareGpt(s) => s.exact(),
        }
    }

    /// Lines for the user: how lengths are counted, what a dataset file held.
    pub fn notes(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Workload::ShareGpt(s) = self {
            v.push(s.note());
        }
        if !self.exact() {
            v.push(
                "no --tokenizer: token counts are approximate (whitespace-separated words; \
                 exact for servescope sim, about one token per word of the generated text \
                 for Llama-style tokenizers)"
                    .into(),
            );
        }
        v
    }

    /// What the run stores about its workload.
    pub fn describe_json(&self) -> serde_json::Value {
        match self {
            Workload::Random { spec, tokenizer } => json!({
                "dataset": "random", "input_tokens": spec.input_tokens,
                "output_tokens": spec.output_tokens, "ignore_eos": spec.ignore_eos,
                "seed": spec.seed, "tokenizer": tokenizer.path(),
            }),
            Workload::PrefixRepetition(p) => json!({
                "dataset": "prefix-repetition", "num_prefixes": p.spec.num_prefixes,
                "prefix_len": p.spec.prefix_len, "suffix_len": p.spec.suffix_len,
                "output_tokens": p.spec.output_tokens, "ignore_eos": p.spec.ignore_eos,
                "seed": p.spec.seed, "reuse_prefixes": p.spec.reuse_prefixes,
                "tokenizer": p.tokenizer().path(),
            }),
            Workload::ShareGpt(s) => json!({
                "dataset": "sharegpt", "path": s.path(), "seed": s.seed(), "stats": s.stats,
            }),
        }
    }

    /// Requested input/output lengths where the workload has one (for run summaries).
    pub fn lengths(&self) -> (Option<u32>, Option<u32>) {
        match self {
            Workload::Random { spec, .. } => (Some(spec.input_tokens), Some(spec.output_tokens)),
            Workload::PrefixRepetition(p) => (
                Some(p.spec.prefix_len + p.spec.suffix_len),
                Some(p.spec.output_tokens),
            ),
            Workload::ShareGpt(_) => (None, None),
        }
    }
}

/// A workload with some prompts made ahead ([`Workload::prepare`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    workload: Workload,
    start: usize,
    prompts: Vec<Prompt>,
}

impl Prepared {
    /// The prompt of request `index`: the one made ahead, or made now.
    pub fn prompt(&self, index: usize) -> Prompt {
        index
            .checked_sub(self.start)
            .and_then(|i| self.prompts.get(i))
            .cloned()
            .unwrap_or_else(|| self.workload.prompt(index))
    }
}

/// The correctness probe: a counting prompt whose continuation is known.
pub fn counting_probe(start: u32, shown: u32, continue_for: u32) -> Prompt {
    let nums: Vec<String> = (start..start + shown).map(|n| n.to_string()).collect();
    let expect: Vec<String> = (start + shown..start + shown + continue_for.min(3))
        .map(|n| n.to_string())
        .collect();
    Prompt {
        text: format!("Continue the sequence: {}", nums.join(" ")),
        input_tokens: u64::from(shown + 3),
        max_tokens: continue_for.max(1),
        ignore_eos: true,
        expect_prefix: Some(expect.join(" ")),
    }
}

#[cfg(test)]
mod tests;
