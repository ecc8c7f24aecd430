//! Lines the parser recognised as the engine's but could not place in a timeline:
//! a vLLM logger line (level and timestamp) that states a duration no pattern of
//! the table knows, or a line whose wording belongs to another release band than
//! the table the log was parsed with. Shown by `startup parse`, so that a new
//! release's wording is seen rather than silently dropped.

use serde::{Deserialize, Serialize};

use super::template::find;

/// Lines kept as examples (all are counted).
pub const MAX_KEPT: usize = 50;
/// Longest message text kept per line.
const MAX_TEXT: usize = 200;

/// A line recognised but not placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unplaced {
    /// 1-based line number.
    pub line: usize,
    /// The message (logger header removed), cut to 200 characters.
    pub text: String,
    /// Why it was not placed.
    pub why: String,
}

/// Wordings of a duration in an engine line ("took 0.57 s", "takes 3 seconds", …).
const TIMED: [&str; 8] = [
    "took {f} s",
    "took {f}s",
    "takes {f} s",
    "takes {f}s",
    "time: {f} s",
    "time: {f}s",
    " in {f} s",
    " in {f} sec",
];

/// Whether a message states a duration.
pub fn states_duration(msg: &str) -> bool {
    TIMED.iter().any(|t| find(t, msg).is_some())
}

/// The unplaced lines of one log: up to [`MAX_KEPT`] kept, all counted.
#[derive(Debug, Default)]
pub struct UnplacedLines {
    pub kept: Vec<Unplaced>,
    pub count: usize,
}

impl UnplacedLines {
    pub fn add(&mut self, line: usize, msg: &str, why: &str) {
        self.count += 1;
        if self.kept.len() < MAX_KEPT {
            let text: String = msg.chars().take(MAX_TEXT).collect();
            self.kept.push(Unplaced {
                line,
                text,
                why: why.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_duration_wordings() {
        assert!(states_duration("Initializing model took 0.203249 seconds"));
        assert!(states_duration(
            "[backbone] Initial profiling/warmup run took 0.57 s"
        ));
        assert!(states_duration(
            "Graph capturing finished in 12 secs, took 0.5 GiB"
        ));
        assert!(!states_duration("Route: /v1/completions, Methods: POST"));
        assert!(!states_duration("Avg prompt throughput: 3.9 tokens/s"));
        let mut u = UnplacedLines::default();
        for i in 0..MAX_KEPT + 5 {
            u.add(i, &"x".repeat(500), "why");
        }
        assert_eq!((u.count, u.kept.len()), (MAX_KEPT + 5, MAX_KEPT));
        assert_eq!(u.kept[0].text.chars().count(), 200);
    }
}
