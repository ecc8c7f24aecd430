//! `random`: every request its own random text of exactly `input_tokens` tokens,
//! asking for `output_tokens`. Each request draws from a generator seeded by the
//! workload's seed and its index, so shards and requests share no accidental prefix.

use crate::request::Prompt;
use crate::schedule::Rng;

use super::tokenizer::TokenCounter;

/// The seed of request `index`'s generator.
pub(crate) fn index_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(17)
}

/// Random prompts of exact length.
#[derive(Debug, Clone)]
pub struct RandomWorkload {
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub ignore_eos: bool,
    pub seed: u64,
}

impl RandomWorkload {
    /// The prompt of request `index` (deterministic for a seed), counted in
    /// whitespace words (the approximation without a tokenizer).
    pub fn prompt(&self, index: usize) -> Prompt {
        self.prompt_with(&TokenCounter::words(), index)
    }

    /// The prompt of request `index`, of `input_tokens` tokens as `tok` counts them;
    /// `Prompt::input_tokens` is the count of the text actually produced.
    pub fn prompt_with(&self, tok: &TokenCounter, index: usize) -> Prompt {
        let mut rng = Rng::new(index_seed(self.seed, index));
        let n = self.input_tokens.max(1) as usize;
        let (text, ids) = tok.random_text(&mut rng, n);
        Prompt {
            text,
            input_tokens: ids.len() as u64,
            max_tokens: self.output_tokens.max(1),
            ignore_eos: self.ignore_eos,
            expect_prefix: None,
        }
    }
}
