//! What is asked: prompts with exact input and output lengths, and the counting
//! probe. Without a tokenizer, a prompt's length is counted in whitespace-separated
//! words drawn from a vocabulary of short common words (≈ one token each for
//! Llama-style tokenizers; exact for `servescope sim`). Each request gets its own
//! words from a seeded generator, so shards and requests share no accidental prefix.

use super::request::Prompt;
use super::schedule::Rng;

const VOCAB: [&str; 32] = [
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

/// Random prompts of exact length.
#[derive(Debug, Clone)]
pub struct RandomWorkload {
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub ignore_eos: bool,
    pub seed: u64,
}

impl RandomWorkload {
    /// The prompt of request `index` (deterministic for a seed).
    pub fn prompt(&self, index: usize) -> Prompt {
        let mut rng = Rng::new(
            self.seed
                ^ (index as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .rotate_left(17),
        );
        let n = self.input_tokens.max(1) as usize;
        let mut text = String::with_capacity(n * 7);
        for i in 0..n {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(VOCAB[(rng.next_u64() % VOCAB.len() as u64) as usize]);
        }
        Prompt {
            text,
            input_tokens: u64::from(self.input_tokens.max(1)),
            max_tokens: self.output_tokens.max(1),
            ignore_eos: self.ignore_eos,
            expect_prefix: None,
        }
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
mod tests {
    use super::*;

    #[test]
    fn exact_lengths_distinct_prompts() {
        let w = RandomWorkload {
            input_tokens: 100,
            output_tokens: 7,
            ignore_eos: true,
            seed: 1,
        };
        let a = w.prompt(0);
        let b = w.prompt(1);
        assert_eq!(a.text.split_whitespace().count(), 100);
        assert_ne!(a.text, b.text);
        assert_eq!(a.text, w.prompt(0).text, "deterministic");
        let other_seed = RandomWorkload { seed: 2, ..w };
        assert_ne!(other_seed.prompt(0).text[..40], a.text[..40]);
        let p = counting_probe(1, 8, 4);
        assert!(p.text.ends_with("1 2 3 4 5 6 7 8"));
        assert_eq!(p.expect_prefix.as_deref(), Some("9 10 11"));
    }
}
