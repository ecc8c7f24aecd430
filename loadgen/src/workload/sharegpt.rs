//! A ShareGPT-format JSON file (`ShareGPT_V3_unfiltered_cleaned_split.json`): a list
//! of `{"conversations": [{"from": "human", "value": …}, {"from": "gpt", "value": …}, …]}`.
//! The prompt is the first human turn; the output length is the token count of the
//! first gpt answer after it, unless an output length is given.
//!
//! Filtered as vLLM's ShareGPT loader (`is_valid_sequence`): a prompt under 4 tokens,
//! an answer under 4 tokens (not checked when the output length is given), a prompt
//! over 1024 tokens or prompt + output over 2048 are skipped. As vLLM, the usable
//! conversations are shuffled with the seed and taken until `limit`; the prompt is
//! counted with the tokenizer's special tokens (as `tokenizer(prompt).input_ids`),
//! the answer without. Entries that are not of that shape are skipped and counted.
//! Requests cycle through the samples, in an order reshuffled for every seed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use crate::request::Prompt;
use crate::schedule::Rng;

use super::tokenizer::TokenCounter;
use super::WorkloadError;

/// How to read and filter the file.
#[derive(Debug, Clone)]
pub struct ShareGptOptions {
    /// Overrides the answer's length.
    pub output_len: Option<u32>,
    pub ignore_eos: bool,
    pub seed: u64,
    /// Stop after this many usable conversations (None: all).
    pub limit: Option<usize>,
    pub min_len: u64,
    pub max_prompt_len: u64,
    pub max_total_len: u64,
}

impl Default for ShareGptOptions {
    fn default() -> Self {
        ShareGptOptions {
            output_len: None,
            ignore_eos: false,
            seed: 0,
            limit: None,
            min_len: 4,
            max_prompt_len: 1024,
            max_total_len: 2048,
        }
    }
}

/// What loading found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ShareGptStats {
    /// Entries in the file's list.
    pub entries: usize,
    /// Entries not of the expected shape, by reason.
    pub malformed: BTreeMap<&'static str, usize>,
    pub too_short: usize,
    pub too_long: usize,
    /// Well-formed entries not examined because `limit` was reached.
    pub not_examined: usize,
    pub used: usize,
}

impl ShareGptStats {
    pub fn malformed_total(&self) -> usize {
        self.malformed.values().sum()
    }

    fn skipped(&self) -> String {
        let mut parts = Vec::new();
        if self.malformed_total() > 0 {
            let why: Vec<String> = self
                .malformed
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            parts.push(format!(
                "{} malformed ({})",
                self.malformed_total(),
                why.join(", ")
            ));
        }
        if self.too_short > 0 {
            parts.push(format!("{} too short", self.too_short));
        }
        if self.too_long > 0 {
            parts.push(format!("{} too long", self.too_long));
        }
        if parts.is_empty() {
            "none skipped".into()
        } else {
            format!("skipped {}", parts.join(", "))
        }
    }
}

#[derive(Debug)]
struct Sample {
    text: String,
    input_tokens: u64,
    output_tokens: u32,
}

/// The loaded conversations.
#[derive(Debug, Clone)]
pub struct ShareGpt {
    path: PathBuf,
    samples: Arc<Vec<Sample>>,
    /// Request order: a permutation of the samples for `seed`.
    order: Arc<Vec<u32>>,
    seed: u64,
    ignore_eos: bool,
    pub stats: ShareGptStats,
    counted_by: String,
    exact: bool,
}

type Turns = Result<(String, String), &'static str>;

/// The top-level list, read entry by entry (one entry's `Value` at a time).
struct Entries(Vec<Turns>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a ShareGPT list of conversations (a JSON array)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(parse_entry(&v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// The first human turn and the first gpt answer after it.
fn parse_entry(v: &Value) -> Turns {
    let obj = v.as_object().ok_or("not an object")?;
    let turns = obj
        .get("conversations")
        .and_then(Value::as_array)
        .ok_or("without a \"conversations\" list")?;
    let from = |t: &Value| t.get("from").and_then(Value::as_str).map(str::to_owned);
    let human = turns
        .iter()
        .position(|t| matches!(from(t).as_deref(), Some("human" | "user")))
        .ok_or("without a human turn")?;
    let prompt = turns[human]
        .get("value")
        .and_then(Value::as_str)
        .ok_or("with a non-string human \"value\"")?;
    let answer = turns[human + 1..]
        .iter()
        .find(|t| matches!(from(t).as_deref(), Some("gpt" | "assistant" | "chatgpt")))
        .ok_or("without a gpt answer after the human turn")?
        .get("value")
        .and_then(Value::as_str)
        .ok_or("with a non-string gpt \"value\"")?;
    Ok((prompt.to_owned(), answer.to_owned()))
}

impl ShareGpt {
    /// Reads, filters and counts the file.
    pub fn load(
        path: &Path,
        tok: &TokenCounter,
        opts: &ShareGptOptions,
    ) -> Result<Self, WorkloadError> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => WorkloadError::Missing(path.to_path_buf()),
            _ => WorkloadError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        let Entries(entries) = serde_json::from_slice(&bytes).map_err(|e| WorkloadError::Json {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        drop(bytes);
        let mut stats = ShareGptStats {
            entries: entries.len(),
            ..Default::default()
        };
        let mut good = Vec::with_capacity(entries.len());
        for e in entries {
            match e {
                Ok(pair) => good.push(pair),
                Err(why) => *stats.malformed.entry(why).or_default() += 1,
            }
        }
        shuffle(&mut good, opts.seed);
        let mut samples = Vec::new();
        let total = good.len();
        for (i, (prompt, answer)) in good.into_iter().enumerate() {
            if opts.limit.is_some_and(|l| samples.len() >= l) {
                stats.not_examined = total - i;
                break;
            }
            let input = tok.count(&prompt, true);
            let output = match opts.output_len {
                Some(n) => u64::from(n),
                None => tok.count(&answer, false),
            };
            if input < opts.min_len || (opts.output_len.is_none() && output < opts.min_len) {
                stats.too_short += 1;
                continue;
            }
            if input > opts.max_prompt_len || input + output > opts.max_total_len {
                stats.too_long += 1;
                continue;
            }
            samples.push(Sample {
                text: prompt,
                input_tokens: input,
                output_tokens: u32::try_from(output).unwrap_or(u32::MAX),
            });
        }
        stats.used = samples.len();
        if samples.is_empty() {
            return Err(WorkloadError::Empty {
                path: path.to_path_buf(),
                detail: format!(
                    "{} entries, {} (prompt {}–{} tokens, prompt + output ≤ {}, counted by {})",
                    stats.entries,
                    stats.skipped(),
                    opts.min_len,
                    opts.max_prompt_len,
                    opts.max_total_len,
                    tok.describe()
                ),
            });
        }
        let mut s = ShareGpt {
            path: path.to_path_buf(),
            samples: Arc::new(samples),
            order: Arc::new(Vec::new()),
            seed: opts.seed,
            ignore_eos: opts.ignore_eos,
            stats,
            counted_by: tok.describe(),
            exact: tok.is_exact(),
        };
        s.order = Arc::new(s.order_for(opts.seed));
        Ok(s)
    }

    fn order_for(&self, seed: u64) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.samples.len() as u32).collect();
        shuffle(&mut order, seed);
        order
    }

    /// The same samples in another order.
    pub fn reseeded(&self, seed: u64) -> Self {
        ShareGpt {
            order: Arc::new(self.order_for(seed)),
            seed,
            ..self.clone()
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// True when counted by a real tokenizer.
    pub fn exact(&self) -> bool {
        self.exact
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Usable conversations.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// One line on what was loaded and skipped.
    pub fn note(&self) -> String {
        format!(
            "sharegpt {}: {} entries, {} used{}, {}; counted by {}",
            self.path.display(),
            self.stats.entries,
            self.stats.used,
            if self.stats.not_examined > 0 {
                format!(" (limit reached, {} not examined)", self.stats.not_examined)
            } else {
                String::new()
            },
            self.stats.skipped(),
            self.counted_by
        )
    }

    /// The prompt of request `index` (requests cycle through the samples).
    pub fn prompt(&self, index: usize) -> Prompt {
        let s = &self.samples[self.order[index % self.order.len()] as usize];
        Prompt {
            text: s.text.clone(),
            input_tokens: s.input_tokens,
            max_tokens: s.output_tokens.max(1),
            ignore_eos: self.ignore_eos,
            expect_prefix: None,
        }
    }
}

/// Fisher–Yates with the load generator's seeded generator.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut rng = Rng::new(seed ^ 0x5348_4152_4547_5054);
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}
