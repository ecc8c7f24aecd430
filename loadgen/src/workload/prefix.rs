//! `prefix-repetition`, as vLLM's `prefix_repetition` dataset: `num_prefixes`
//! random prefixes of `prefix_len` tokens; every prompt is one of them followed by
//! its own random suffix of `suffix_len` tokens, asking for `output_tokens`.
//!
//! vLLM makes `num_requests / num_prefixes` prompts per prefix and shuffles them;
//! here requests are numbered without an end (`--duration`), so every block of
//! `num_prefixes` consecutive indices uses each prefix once, in a seeded random
//! order — the same balance, and any number of requests.
//!
//! The prefixes are fixed for a seed: shared within a point; the runner reseeds per
//! point and trial, so a point does not hit prefixes a previous one left in the
//! server's cache unless `reuse_prefixes` is set.

use std::sync::Arc;

use crate::request::Prompt;
use crate::schedule::Rng;

use super::random::index_seed;
use super::tokenizer::TokenCounter;

const PREFIX_SALT: u64 = 0x5052_4546_4958_0001;
const SUFFIX_SALT: u64 = 0x5355_4646_4958_0002;
const ORDER_SALT: u64 = 0x4f52_4445_5200_0003;
/// Fresh suffixes tried when the joined prompt does not re-encode to the prefix's
/// ids followed by `suffix_len` more (token merges across the seam).
const SEAM_TRIES: usize = 4;

/// What to generate.
#[derive(Debug, Clone)]
pub struct PrefixSpec {
    pub num_prefixes: u32,
    pub prefix_len: u32,
    pub suffix_len: u32,
    pub output_tokens: u32,
    pub ignore_eos: bool,
    pub seed: u64,
    /// Keep the prefixes of `seed` when reseeded (only suffixes change).
    pub reuse_prefixes: bool,
}

/// Prompts sharing prefixes.
#[derive(Debug, Clone)]
pub struct PrefixRepetition {
    pub spec: PrefixSpec,
    tok: TokenCounter,
    /// Seed of the suffixes and of the order.
    seed: u64,
    /// Each prefix's ids (as its text re-encodes).
    prefixes: Arc<Vec<Vec<u32>>>,
}

impl PrefixRepetition {
    pub fn new(spec: PrefixSpec, tok: TokenCounter) -> Self {
        let prefixes = Arc::new(make_prefixes(&spec, &tok, spec.seed));
        PrefixRepetition {
            seed: spec.seed,
            spec,
            tok,
            prefixes,
        }
    }

    /// The same workload with another seed: new suffixes and order, and new prefixes
    /// unless `reuse_prefixes`.
    pub fn reseeded(&self, seed: u64) -> Self {
        if seed == self.seed {
            return self.clone();
        }
        let prefixes = if self.spec.reuse_prefixes {
            Arc::clone(&self.prefixes)
        } else {
            Arc::new(make_prefixes(&self.spec, &self.tok, seed))
        };
        PrefixRepetition {
            spec: self.spec.clone(),
            tok: self.tok.clone(),
            seed,
            prefixes,
        }
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn tokenizer(&self) -> &TokenCounter {
        &self.tok
    }

    /// The text of prefix `k`.
    pub fn prefix_text(&self, k: usize) -> String {
        self.tok.decode(&self.prefixes[k])
    }

    /// Which prefix request `index` uses.
    pub fn prefix_of(&self, index: usize) -> usize {
        let m = self.prefixes.len();
        if m <= 1 {
            return 0;
        }
        let (block, pos) = (index / m, index % m);
        let mut rng = Rng::new(index_seed(self.seed ^ ORDER_SALT, block));
        let mut order: Vec<usize> = (0..m).collect();
        for i in (1..m).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order[pos]
    }

    /// The prefix-cache hit rate (cached ÷ prompt tokens) the first `requests`
    /// prompts can reach on a server that caches blocks of `block_size` tokens, when
    /// every prefix meets one cache with room to keep it (prefix-affinity routing, no
    /// eviction): a prefix's first request misses; every later one is served the full
    /// blocks of its prefix (never the prompt's last token, which a server always
    /// computes), its suffix computed. Lengths are the spec's (exact for whitespace
    /// words; a real tokenizer can merge a token across the seam).
    pub fn ideal_prefix_hit_rate(&self, requests: usize, block_size: u32) -> f64 {
        let (l, s) = (self.spec.prefix_len, self.spec.suffix_len);
        let total = requests as f64 * f64::from(l + s);
        if total == 0.0 || block_size == 0 {
            return 0.0;
        }
        let per_hit = l.min((l + s).saturating_sub(1)) / block_size * block_size;
        let mut seen = vec![false; self.prefixes.len()];
        let mut cold = 0usize;
        for i in 0..requests {
            let k = self.prefix_of(i);
            if !seen[k] {
                seen[k] = true;
                cold += 1;
            }
        }
        (requests - cold) as f64 * f64::from(per_hit) / total
    }

    /// The prompt of request `index`; `input_tokens` is the re-encoded length of the
    /// text sent.
    pub fn prompt(&self, index: usize) -> Prompt {
        let prefix = &self.prefixes[self.prefix_of(index)];
        let want = prefix.len() + self.spec.suffix_len as usize;
        let mut rng = Rng::new(index_seed(self.seed ^ SUFFIX_SALT, index));
        let mut best: Option<(String, usize)> = None;
        for _ in 0..SEAM_TRIES {
            let (_, suffix) = self
                .tok
                .random_text(&mut rng, self.spec.suffix_len as usize);
            let mut ids = Vec::with_capacity(want);
            ids.extend_from_slice(prefix);
            ids.extend_from_slice(&suffix);
            let text = self.tok.decode(&ids);
            let again = self.tok.encode(&text, false);
            let ok = again.len() == want && again.starts_with(prefix);
            let better = best
                .as_ref()
                .is_none_or(|(_, n)| again.len().abs_diff(want) < n.abs_diff(want));
            if ok || better {
                best = Some((text, again.len()));
            }
            if ok {
                break;
            }
        }
        let (text, n) = best.unwrap_or_default();
        Prompt {
            text,
            input_tokens: n as u64,
            max_tokens: self.spec.output_tokens.max(1),
            ignore_eos: self.spec.ignore_eos,
            expect_prefix: None,
        }
    }
}

fn make_prefixes(spec: &PrefixSpec, tok: &TokenCounter, seed: u64) -> Vec<Vec<u32>> {
    (0..spec.num_prefixes.max(1) as usize)
        .map(|k| {
            let mut rng = Rng::new(index_seed(seed ^ PREFIX_SALT, k));
            tok.random_text(&mut rng, spec.prefix_len as usize).1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_hit_rate_counts_one_cold_request_per_prefix_and_full_blocks() {
        let spec = PrefixSpec {
            num_prefixes: 4,
            prefix_len: 40,
            suffix_len: 10,
            output_tokens: 1,
            ignore_eos: false,
            seed: 3,
            reuse_prefixes: false,
        };
        let w = PrefixRepetition::new(spec.clone(), TokenCounter::words());
        // 20 requests, 4 cold; 16 warm ones get 2 blocks of 16 of their 40-token prefix.
        let r = w.ideal_prefix_hit_rate(20, 16);
        assert!((r - 16.0 * 32.0 / (20.0 * 50.0)).abs() < 1e-12, "{r}");
        // Blocks of 8 cover the whole prefix; 2 requests: both cold when they differ.
        assert!((w.ideal_prefix_hit_rate(8, 8) - 4.0 * 40.0 / 400.0).abs() < 1e-12);
        assert_eq!(w.ideal_prefix_hit_rate(2, 8), 0.0);
        assert_eq!(w.ideal_prefix_hit_rate(0, 8), 0.0);
        // No suffix: the last prompt token is computed, so the last block is not served.
        let bare = PrefixRepetition::new(
            PrefixSpec {
                suffix_len: 0,
                prefix_len: 32,
                ..spec
            },
            TokenCounter::words(),
        );
        let r = bare.ideal_prefix_hit_rate(8, 16);
        assert!((r - 4.0 * 16.0 / (8.0 * 32.0)).abs() < 1e-12, "{r}");
    }
}
