//! Counting tokens. With a Hugging Face `tokenizer.json` (feature `hf-tokenizer`)
//! lengths are exact for that tokenizer; without one, a token is a
//! whitespace-separated word — the documented approximation, exact for
//! `servescope sim` and roughly one token per word of the short common words the
//! generator draws for Llama-style tokenizers.
//!
//! Text of an exact length is made as vLLM's random dataset makes it
//! (`gen_prompt_decode_to_target_len`): draw token ids from the vocabulary (special
//! and added tokens excluded, and — unlike vLLM — tokens that do not decode to
//! valid text on their own, such as lone bytes), decode, re-encode, trim or extend the ids, and repeat
//! (at most 10 retries). What is returned is always a text together with the ids its
//! re-encoding gives, so the count reported is the count of the text that is sent.

use std::fmt;
use std::path::Path;
#[cfg(feature = "hf-tokenizer")]
use std::{path::PathBuf, sync::Arc};

use crate::schedule::Rng;

use super::WorkloadError;

/// The words the approximation draws from (≈ one token each for Llama-style
/// tokenizers).
pub const WORDS: [&str; 32] = [
    "time",
    "year",
    "people",
    "way",
    "day",
    "man",
    "thing",
    "woman",
    "life",
    "child",
    "world",
    "school",
    "state",
    "family",
    "student",
    "group",
    "country",
    "problem",
    "hand",
    "part",
    "place",
    "case",
    "week",
    "company",
    "system",
    "program",
    "question",
    "work",
    "government",
    "number",
    "night",
    "point",
];

/// Decode → re-encode → adjust rounds, as vLLM (`max_retry=10`).
pub const MAX_RETRIES: usize = 10;

/// How tokens are counted. Cheap to clone.
#[derive(Clone, Default)]
pub struct TokenCounter {
    inner: Inner,
}

#[derive(Clone, Default)]
enum Inner {
    /// Whitespace-separated words; ids index [`WORDS`].
    #[default]
    Words,
    #[cfg(feature = "hf-tokenizer")]
    Hf(Arc<Hf>),
}

#[cfg(feature = "hf-tokenizer")]
struct Hf {
    tok: tokenizers::Tokenizer,
    /// Ids random text is drawn from: the model's vocabulary less added/special tokens.
    allowed: Vec<u32>,
    path: PathBuf,
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl TokenCounter {
    /// The approximation: whitespace-separated words.
    pub fn words() -> Self {
        TokenCounter {
            inner: Inner::Words,
        }
    }

    /// Loads a Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self, WorkloadError> {
        #[cfg(feature = "hf-tokenizer")]
        {
            if !path.exists() {
                return Err(WorkloadError::Missing(path.to_path_buf()));
            }
            let tok = tokenizers::Tokenizer::from_file(path).map_err(|e| {
                WorkloadError::Tokenizer(format!(
                    "{}: not a usable tokenizer.json: {e}",
                    path.display()
                ))
            })?;
            let added: std::collections::HashSet<u32> =
                tok.get_added_tokens_decoder().keys().copied().collect();
            let mut ordinary: Vec<u32> = tok
                .get_vocab(false)
                .into_values()
                .filter(|id| !added.contains(id))
                .collect();
            ordinary.sort_unstable();
            ordinary.dedup();
            // Unlike vLLM, leave out tokens that are not text on their own (the lone
            // bytes of a byte-level vocabulary decode to U+FFFD): random runs of them
            // are broken UTF-8 that re-encodes to other lengths.
            let mut allowed: Vec<u32> = ordinary
                .iter()
                .copied()
                .filter(|&id| {
                    tok.decode(&[id], false)
                        .is_ok_and(|t| !t.is_empty() && !t.contains('\u{fffd}'))
                })
                .collect();
            if allowed.is_empty() {
                allowed = ordinary;
            }
            if allowed.is_empty() {
                return Err(WorkloadError::Tokenizer(format!(
                    "{}: the tokenizer has no ordinary tokens to draw from",
                    path.display()
                )));
            }
            Ok(TokenCounter {
                inner: Inner::Hf(Arc::new(Hf {
                    tok,
                    allowed,
                    path: path.to_path_buf(),
                })),
            })
        }
        #[cfg(not(feature = "hf-tokenizer"))]
        {
            Err(WorkloadError::Tokenizer(format!(
                "cannot load {}: servescope was built without the `hf-tokenizer` feature",
                path.display()
            )))
        }
    }

    /// True when counts are a real tokenizer's.
    pub fn is_exact(&self) -> bool {
        !matches!(self.inner, Inner::Words)
    }

    /// One line saying how tokens are counted.
    pub fn describe(&self) -> String {
        match &self.inner {
            Inner::Words => "whitespace words (approximate; no --tokenizer)".into(),
            #[cfg(feature = "hf-tokenizer")]
            Inner::Hf(h) => format!("tokenizer {}", h.path.display()),
        }
    }

    /// The tokenizer file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Words => None,
            #[cfg(feature = "hf-tokenizer")]
            Inner::Hf(h) => Some(&h.path),
        }
    }

    /// Token ids of `text` (`special`: add the tokenizer's special tokens, e.g. BOS).
    /// Words: indices into [`WORDS`] (unknown words count, as index 0).
    pub fn encode(&self, text: &str, special: bool) -> Vec<u32> {
        match &self.inner {
            Inner::Words => {
                let _ = special;
                text.split_whitespace()
                    .map(|w| WORDS.iter().position(|v| *v == w).unwrap_or(0) as u32)
                    .collect()
            }
            #[cfg(feature = "hf-tokenizer")]
            Inner::Hf(h) => h
                .tok
                .encode(text, special)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default(),
        }
    }

    /// Tokens in `text`.
    pub fn count(&self, text: &str, special: bool) -> u64 {
        match &self.inner {
            Inner::Words => {
                let _ = special;
                text.split_whitespace().count() as u64
            }
            #[cfg(feature = "hf-tokenizer")]
            Inner::Hf(_) => self.encode(text, special).len() as u64,
        }
    }

    /// The text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.inner {
            Inner::Words => {
                let mut s = String::with_capacity(ids.len() * 7);
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    s.push_str(WORDS[*id as usize % WORDS.len()]);
                }
                s
            }
            #[cfg(feature = "hf-tokenizer")]
            Inner::Hf(h) => h.tok.decode(ids, false).unwrap_or_default(),
        }
    }

    fn draw(&self, rng: &mut Rng) -> u32 {
        match &self.inner {
            Inner::Words => (rng.next_u64() % WORDS.len() as u64) as u32,
            #[cfg(feature = "hf-tokenizer")]
            Inner::Hf(h) => h.allowed[(rng.next_u64() % h.allowed.len() as u64) as usize],
        }
    }

    /// `n` random ids from the vocabulary.
    pub fn random_ids(&self, rng: &mut Rng, n: usize) -> Vec<u32> {
        (0..n).map(|_| self.draw(rng)).collect()
    }

    /// Random text of `n` tokens: returns the text and the ids it re-encodes to
    /// (without special tokens). Their length is `n` unless decode→re-encode kept
    /// drifting for [`MAX_RETRIES`] rounds; callers report the real length.
    pub fn random_text(&self, rng: &mut Rng, n: usize) -> (String, Vec<u32>) {
        let ids = self.random_ids(rng, n);
        self.fit(rng, ids, n)
    }

    /// Brings `ids` to `n` tokens that survive decode→re-encode (vLLM's loop).
    pub fn fit(&self, rng: &mut Rng, mut ids: Vec<u32>, n: usize) -> (String, Vec<u32>) {
        if !self.is_exact() {
            // Words survive decode → re-encode unchanged.
            ids.resize_with(n, || self.draw(rng));
            return (self.decode(&ids), ids);
        }
        let mut tries = 0;
        loop {
            let text = self.decode(&ids);
            let mut again = self.encode(&text, false);
            if again.len() == n || tries >= MAX_RETRIES {
                return (text, again);
            }
            if again.len() < n {
                let extra = n - again.len();
                again.extend((0..extra).map(|_| self.draw(rng)));
            } else {
                again.truncate(n);
            }
            ids = again;
            tries += 1;
        }
    }
}
