//! Automatic prefix caching, as vLLM's: a prompt is cut into blocks of
//! `block_size` tokens; each full block is named by a hash chained over its parent's
//! hash and its own tokens, so a block hit means the whole prefix up to it matches.
//! A request's hit is the longest run of leading blocks already cached, at most
//! `prompt − 1` tokens (the last prompt token is always computed, to sample from);
//! then all its full blocks are cached. Eviction is least-recently-used over a fixed
//! number of blocks per replica; a request's blocks are stamped tail-first, so the
//! tail of a prompt is evicted before its head (vLLM frees a request's blocks in
//! reverse order).
//!
//! Tokens are the simulator's: whitespace-separated words (token ids when the prompt
//! is a list of ids), each hashed by its text.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Prefix cache of one engine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct PrefixCacheConfig {
    /// Tokens per block (vLLM `--block-size`, 16 by default).
    pub block_size: u32,
    /// Blocks the cache holds (per replica).
    pub capacity_blocks: usize,
}

impl Default for PrefixCacheConfig {
    fn default() -> Self {
        PrefixCacheConfig {
            block_size: 16,
            capacity_blocks: 4096,
        }
    }
}

impl PrefixCacheConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.block_size == 0 || self.capacity_blocks == 0 {
            return Err("prefix cache block_size and capacity_blocks must be ≥ 1".into());
        }
        Ok(())
    }
}

/// FNV-1a of a token's text.
fn token_hash(t: &str) -> u64 {
    t.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Mixes a parent hash with a token hash (splitmix64's finaliser over the pair).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.rotate_left(29) ^ b.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The chained hashes of the prompt's first `max_blocks` full blocks of `block_size`
/// tokens (`tokens` as the simulator counts them: whitespace-separated words).
pub fn block_hashes(prompt: &str, block_size: u32, max_blocks: usize) -> Vec<u64> {
    let b = block_size.max(1) as usize;
    let mut out = Vec::new();
    let (mut parent, mut h, mut n) = (0u64, 0u64, 0usize);
    for w in prompt.split_whitespace() {
        if out.len() >= max_blocks {
            break;
        }
        h = mix(h, token_hash(w));
        n += 1;
        if n == b {
            parent = mix(parent, h);
            out.push(parent);
            (h, n) = (0, 0);
        }
    }
    out
}

/// A hash of the prompt's first `blocks` blocks, for routing: the last full block's
/// chained hash, or (for a prompt shorter than that) a hash of all its tokens.
pub fn routing_hash(prompt: &str, block_size: u32, blocks: usize) -> u64 {
    let blocks = blocks.max(1);
    let full = block_hashes(prompt, block_size, blocks);
    if full.len() == blocks {
        return full[blocks - 1];
    }
    prompt
        .split_whitespace()
        .fold(0, |h, w| mix(h, token_hash(w)))
}

/// A least-recently-used set of block hashes.
#[derive(Debug)]
pub struct PrefixCache {
    cfg: PrefixCacheConfig,
    /// Block hash → its last-use stamp.
    blocks: HashMap<u64, u64>,
    /// Last-use stamp → block hash (oldest first).
    by_age: BTreeMap<u64, u64>,
    clock: u64,
}

impl PrefixCache {
    pub fn new(cfg: PrefixCacheConfig) -> Self {
        PrefixCache {
            cfg,
            blocks: HashMap::new(),
            by_age: BTreeMap::new(),
            clock: 0,
        }
    }

    pub fn config(&self) -> PrefixCacheConfig {
        self.cfg
    }

    /// Blocks held now.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Schedules a prompt of `prompt_tokens` tokens whose full blocks hash to
    /// `hashes`: returns the tokens served from the cache, then caches every block.
    pub fn schedule(&mut self, hashes: &[u64], prompt_tokens: u32) -> u32 {
        let b = self.cfg.block_size.max(1);
        // The last prompt token is always computed.
        let max_blocks = (prompt_tokens.saturating_sub(1) / b) as usize;
        let hit = hashes
            .iter()
            .take(max_blocks)
            .take_while(|h| self.blocks.contains_key(h))
            .count();
        // Tail-first stamps: the head of the prompt is the most recently used.
        let base = self.clock;
        self.clock += hashes.len() as u64;
        for (i, h) in hashes.iter().enumerate() {
            self.stamp(*h, base + (hashes.len() - i) as u64);
        }
        while self.blocks.len() > self.cfg.capacity_blocks {
            let Some((_, old)) = self.by_age.pop_first() else {
                break;
            };
            self.blocks.remove(&old);
        }
        u32::try_from(hit).unwrap_or(u32::MAX).saturating_mul(b)
    }

    fn stamp(&mut self, h: u64, at: u64) {
        if let Some(prev) = self.blocks.insert(h, at) {
            self.by_age.remove(&prev);
        }
        self.by_age.insert(at, h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(prefix: &str, n: usize) -> String {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn hashes_chain_over_full_blocks() {
        let a = format!("{} {}", words("s", 8), words("x", 5));
        let b = format!("{} {}", words("s", 8), words("y", 5));
        let (ha, hb) = (block_hashes(&a, 4, usize::MAX), block_hashes(&b, 4, 10));
        assert_eq!(ha.len(), 3, "13 tokens: 3 full blocks of 4");
        assert_eq!(ha[..2], hb[..2], "the shared 8 tokens");
        assert_ne!(ha[2], hb[2]);
        // Same tokens after a different head: a different block.
        let c = format!("{} {}", words("t", 4), words("s", 8));
        let hc = block_hashes(&c, 4, usize::MAX);
        assert_ne!(hc[1], ha[0]);
        assert_eq!(block_hashes(&a, 4, 1), ha[..1]);
        // Whitespace does not make tokens.
        assert_eq!(block_hashes(&a.replace(' ', "  \n"), 4, usize::MAX), ha);
    }

    #[test]
    fn routing_hash_looks_at_the_first_blocks_only() {
        let a = format!("{} {}", words("s", 16), words("x", 5));
        let b = format!("{} {}", words("s", 16), words("y", 40));
        assert_eq!(routing_hash(&a, 16, 1), routing_hash(&b, 16, 1));
        assert_ne!(routing_hash(&a, 8, 3), routing_hash(&b, 8, 3));
        assert_ne!(routing_hash("a b", 16, 1), routing_hash("a c", 16, 1));
    }

    #[test]
    fn hits_are_leading_blocks_and_never_the_whole_prompt() {
        let mut c = PrefixCache::new(PrefixCacheConfig {
            block_size: 4,
            capacity_blocks: 100,
        });
        let p = format!("{} {}", words("s", 8), words("x", 4));
        let h = block_hashes(&p, 4, usize::MAX);
        assert_eq!(c.schedule(&h, 12), 0, "cold");
        assert_eq!(c.len(), 3);
        // The same 12 tokens again: 11 may come from the cache, so 2 blocks.
        assert_eq!(c.schedule(&h, 12), 8);
        // One more token: all three blocks.
        let q = format!("{p} z");
        assert_eq!(c.schedule(&block_hashes(&q, 4, usize::MAX), 13), 12);
        // A different middle block stops the run there.
        let r = format!("{} {} {}", words("s", 4), words("m", 4), words("x", 4));
        assert_eq!(c.schedule(&block_hashes(&r, 4, usize::MAX), 13), 4);
    }

    #[test]
    fn least_recently_used_blocks_go_first_tail_before_head() {
        let mut c = PrefixCache::new(PrefixCacheConfig {
            block_size: 2,
            capacity_blocks: 4,
        });
        let a = block_hashes(&words("a", 6), 2, usize::MAX);
        let b = block_hashes(&words("b", 4), 2, usize::MAX);
        c.schedule(&a, 7);
        c.schedule(&b, 5);
        // 5 blocks for 4 places: a's tail block went, its head stayed.
        assert_eq!(c.len(), 4);
        assert_eq!(c.schedule(&a, 7), 4, "a's first two blocks");
        // That use made a's head newer than b: b's tail goes next.
        assert_eq!(c.schedule(&b, 5), 2);
    }

    #[test]
    fn bad_configs_are_refused() {
        let bad = PrefixCacheConfig {
            block_size: 0,
            capacity_blocks: 1,
        };
        assert!(bad.validate().is_err());
        assert!(PrefixCacheConfig::default().validate().is_ok());
    }
}
