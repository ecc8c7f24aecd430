//! The sequence check of the recording tests: what a store kept of one agent's
//! stream and the gaps it counted lost account for every sample once.

/// Asserts that each gap — (first sequence asked for, first one the agent still
/// had, samples counted lost), as a store records it — counts exactly the
/// sequences it skips, and that the stored sequences `seqs` (ascending, not empty)
/// are every number from the first to the last stored one except the gaps':
/// stored and counted lost, each sequence once. Returns the last stored sequence.
pub fn assert_each_sequence_once(
    seqs: &[u64],
    gaps: impl IntoIterator<Item = (u64, u64, u64)>,
) -> u64 {
    let gaps: Vec<(u64, u64, u64)> = gaps.into_iter().collect();
    for &(from, resumed, lost) in &gaps {
        assert_eq!(lost, resumed - from, "gap {from}..{resumed}");
    }
    let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
        panic!("no sequence stored");
    };
    let expect: Vec<u64> = (first..=last)
        .filter(|s| !gaps.iter().any(|g| (g.0..g.1).contains(s)))
        .collect();
    assert_eq!(seqs, expect, "stored and counted lost: each sequence once");
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_an_exact_cover_and_refuses_overlaps_and_holes() {
        assert_eq!(assert_each_sequence_once(&[1, 2, 5, 6], [(3, 5, 2)]), 6);
        for (seqs, gap) in [
            (vec![1, 2, 5, 6], (3, 5, 3)),
            (vec![1, 2, 3, 5, 6], (3, 5, 2)),
            (vec![1, 5, 6], (3, 5, 2)),
        ] {
            let r = std::panic::catch_unwind(|| assert_each_sequence_once(&seqs, [gap]));
            assert!(r.is_err(), "{seqs:?} {gap:?}");
        }
    }
}
