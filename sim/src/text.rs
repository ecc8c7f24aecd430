//! What the simulator says: token counting of prompts, deterministic output text
//! (continuing a counting prompt, so a correctness probe knows the right answer),
//! and gibberish for the fault.

/// Tokens in a prompt: whitespace-separated words (at least 1). The load client's
/// `random` workload without a tokenizer generates prompts counted the same way.
pub fn count_tokens(prompt: &str) -> u32 {
    u32::try_from(prompt.split_whitespace().count().max(1)).unwrap_or(u32::MAX)
}

/// If the prompt ends in a run of consecutive integers ("… 1 2 3 4"), the next one.
pub fn counting_start(prompt: &str) -> Option<u64> {
    let nums: Vec<u64> = prompt
        .split_whitespace()
        .rev()
        .map_while(|w| w.trim_end_matches([',', '.']).parse().ok())
        .take(3)
        .collect();
    if nums.len() >= 3 && nums[0] == nums[1] + 1 && nums[1] == nums[2] + 1 {
        nums[0].checked_add(1)
    } else {
        None
    }
}

const WORDS: [&str; 16] = [
    " the",
    " model",
    " serves",
    " tokens",
    " over",
    " a",
    " fast",
    " fabric",
    " and",
    " every",
    " request",
    " is",
    " measured",
    " on",
    " one",
    " clock",
];

/// The i-th output token's text.
pub fn token(i: u32, counting: Option<u64>) -> String {
    match counting {
        Some(start) => format!(" {}", start.saturating_add(u64::from(i))),
        None => WORDS[i as usize % WORDS.len()].to_string(),
    }
}

/// A gibberish token from a generator state.
pub fn gibberish(state: &mut u64) -> String {
    let mut s = String::from(" ");
    for _ in 0..4 {
        let c = b"qxzj#%@!kvw7"[(next(state) % 12) as usize];
        s.push(c as char);
    }
    s
}

/// xorshift64*.
pub fn next(state: &mut u64) -> u64 {
    let mut x = (*state).max(1);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// A uniform number in [0, 1).
pub fn unit(state: &mut u64) -> f64 {
    (next(state) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_continues() {
        assert_eq!(counting_start("Count: 1 2 3 4"), Some(5));
        assert_eq!(counting_start("1, 2, 3,"), Some(4));
        assert_eq!(counting_start("hello 1 2"), None);
        assert_eq!(counting_start("5 9 10"), None);
        assert_eq!(token(0, Some(5)), " 5");
        assert_eq!(token(2, Some(5)), " 7");
        assert_eq!(count_tokens("a b  c\n d"), 4);
        assert_eq!(count_tokens(""), 1);
    }

    #[test]
    fn unit_is_in_range() {
        let mut s = 7;
        for _ in 0..10_000 {
            let u = unit(&mut s);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
