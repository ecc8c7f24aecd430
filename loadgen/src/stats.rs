//! Summary statistics computed exactly as `vllm bench serve` computes them.
//!
//! vLLM's `calculate_metrics` reports `np.mean(x or 0)`, `np.median(x or 0)`,
//! `np.std(x or 0)` (population std, `ddof = 0`) and `np.percentile(x or 0, p)`
//! (numpy's default `method="linear"`). This module reproduces numpy bit for bit where
//! that is cheap to do:
//!
//! * sums use numpy's pairwise summation (8-way unrolled blocks of ≤ 128 elements, split
//!   in halves above that), so means and standard deviations match numpy's to the last
//!   bit rather than to a naive left-to-right sum;
//! * percentiles use numpy's virtual index `(n − 1)·(p/100)` and its two-sided `_lerp`
//!   (`a + (b − a)·g` for `g < 0.5`, `b − (b − a)·(1 − g)` otherwise);
//! * the median is the middle element, or the numpy mean of the two middle elements.
//!
//! Empty input: the low-level functions return `None`; [`Summary::of`] follows vLLM's
//! `x or 0` and reports zeros with `count = 0` (never NaN).

use thiserror::Error;

/// Percentiles reported when none are requested (vLLM's default list is `99` alone;
/// servescope always reports 90, 95 and 99, and any extra ones requested).
pub const DEFAULT_PERCENTILES: [f64; 3] = [90.0, 95.0, 99.0];

/// Errors from statistics over samples.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum StatsError {
    /// A requested percentile is outside `[0, 100]` or not a number.
    #[error("percentile {0} is outside [0, 100]")]
    PercentileOutOfRange(f64),
    /// A percentile list entry could not be parsed.
    #[error("cannot parse percentile {0:?} (expected a number in [0, 100], e.g. 99 or 99.9)")]
    BadPercentile(String),
    /// A sample is NaN or infinite.
    #[error("sample {index} is not finite ({value})")]
    NonFinite {
        /// Position of the sample.
        index: usize,
        /// The offending value.
        value: f64,
    },
}

const PW_BLOCKSIZE: usize = 128;

fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for x in a {
            res += x;
        }
        res
    } else if n <= PW_BLOCKSIZE {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.sum(xs)` for a contiguous float64 array (`0.0 + pairwise sum`).
pub fn np_sum(xs: &[f64]) -> f64 {
    0.0 + pairwise_sum(xs)
}

/// `np.mean(xs)`; `None` when empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(np_sum(xs) / xs.len() as f64)
}

/// `np.std(xs)` (population, `ddof = 0`); `None` when empty.
pub fn std_pop(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    let sq: Vec<f64> = xs
        .iter()
        .map(|x| {
            let d = x - m;
            d * d
        })
        .collect();
    Some((np_sum(&sq) / xs.len() as f64).sqrt())
}

/// Sorts samples ascending (total order; callers reject NaN first).
pub fn sort_samples(xs: &mut [f64]) {
    xs.sort_by(f64::total_cmp);
}

/// `np.median` over samples already sorted ascending; `None` when empty.
pub fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    if n % 2 == 1 {
        Some(sorted[n / 2])
    } else {
        mean(&sorted[n / 2 - 1..n / 2 + 1])
    }
}

/// numpy's `_lerp`: `a + (b − a)·t` below one half, `b − (b − a)·(1 − t)` above.
fn np_lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// `np.percentile(sorted, p)` with the default linear method, over samples already
/// sorted ascending; `None` when empty or when `p` is outside `[0, 100]`.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let q = p / 100.0;
    let virtual_index = (n - 1) as f64 * q;
    let last = (n - 1) as f64;
    if virtual_index >= last {
        return Some(sorted[n - 1]);
    }
    let lo = virtual_index.floor();
    let gamma = virtual_index - lo;
    let lo = lo as usize;
    Some(np_lerp(sorted[lo], sorted[lo + 1], gamma))
}

/// `np.percentile(xs, p)`; sorts `xs` in place.
pub fn percentile(xs: &mut [f64], p: f64) -> Option<f64> {
    sort_samples(xs);
    percentile_sorted(xs, p)
}

/// The word vLLM puts in `p{word}_ttft_ms`: the integer when `p` is integral
/// (`99` → `"99"`), otherwise the shortest float text (`99.9` → `"99.9"`).
pub fn percentile_word(p: f64) -> String {
    if p.fract() == 0.0 && p.abs() < 1e15 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

/// Checks a percentile list (each in `[0, 100]`).
pub fn validate_percentiles(ps: &[f64]) -> Result<(), StatsError> {
    match ps.iter().find(|p| !(0.0..=100.0).contains(*p)) {
        Some(p) => Err(StatsError::PercentileOutOfRange(*p)),
        None => Ok(()),
    }
}

/// Parses `"90,95,99,99.9"` (commas and/or spaces) into a percentile list, keeping
/// [`DEFAULT_PERCENTILES`] first and appending extra requested values once each.
pub fn parse_percentiles(text: &str) -> Result<Vec<f64>, StatsError> {
    let mut out = DEFAULT_PERCENTILES.to_vec();
    for item in text.split([',', ' ']).filter(|s| !s.trim().is_empty()) {
        let item = item.trim();
        let p: f64 = item
            .trim_start_matches(['p', 'P'])
            .parse()
            .map_err(|_| StatsError::BadPercentile(item.to_string()))?;
        validate_percentiles(&[p])?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Mean, median, std and percentiles of one metric, in the samples' unit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Number of samples (0: every statistic is 0, as vLLM's `np.*(x or 0)`).
    pub count: usize,
    /// `np.mean`.
    pub mean: f64,
    /// `np.median`.
    pub median: f64,
    /// `np.std` (population).
    pub std: f64,
    /// Smallest sample (0 when empty).
    pub min: f64,
    /// Largest sample (0 when empty).
    pub max: f64,
    /// `(p, np.percentile(samples, p))` in the order requested.
    pub percentiles: Vec<(f64, f64)>,
}

impl Summary {
    /// Statistics over `samples` (sorted in place) for the given percentiles.
    /// Empty input gives zeros, as vLLM's `np.mean(x or 0)`.
    pub fn of(samples: &mut [f64], percentiles: &[f64]) -> Result<Summary, StatsError> {
        validate_percentiles(percentiles)?;
        if let Some((index, value)) = samples.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StatsError::NonFinite {
                index,
                value: *value,
            });
        }
        if samples.is_empty() {
            return Ok(Summary {
                count: 0,
                mean: 0.0,
                median: 0.0,
                std: 0.0,
                min: 0.0,
                max: 0.0,
                percentiles: percentiles.iter().map(|p| (*p, 0.0)).collect(),
            });
        }
        // Mean and std over the original order (numpy's pairwise sum depends on it).
        let mean = mean(samples).unwrap_or(0.0);
        let std = std_pop(samples).unwrap_or(0.0);
        sort_samples(samples);
        Ok(Summary {
            count: samples.len(),
            mean,
            median: median_sorted(samples).unwrap_or(0.0),
            std,
            min: samples[0],
            max: samples[samples.len() - 1],
            percentiles: percentiles
                .iter()
                .map(|p| (*p, percentile_sorted(samples, *p).unwrap_or(0.0)))
                .collect(),
        })
    }

    /// The value stored for percentile `p`, if it was requested.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, v)| *v)
    }

    /// The same summary with every value multiplied by `k` (e.g. seconds → ms).
    pub fn scaled(&self, k: f64) -> Summary {
        Summary {
            count: self.count,
            mean: self.mean * k,
            median: self.median * k,
            std: self.std * k,
            min: self.min * k,
            max: self.max * k,
            percentiles: self.percentiles.iter().map(|(p, v)| (*p, v * k)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random samples (xorshift), reproduced in Python below.
    fn samples(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 1_000_000) as f64 / 997.0
            })
            .collect()
    }

    // Reference values printed by python3 + numpy 2.4.6 with the script in the
    // comment below (`REFERENCE`: mean, median, std, then the percentiles).
    #[test]
    fn matches_numpy_exactly() {
        // import numpy as np
        // def samples(n, seed):
        //     s = seed; out = []
        //     for _ in range(n):
        //         s ^= (s << 13) & (2**64-1); s ^= s >> 7; s ^= (s << 17) & (2**64-1)
        //         out.append((s % 1000000) / 997.0)
        //     return out
        // for n in (1, 2, 7, 8, 9, 130, 1000, 4097, 20000):
        //     x = samples(n, 42)
        //     print(n, repr(np.mean(x)), repr(np.median(x)), repr(np.std(x)),
        //           [repr(np.percentile(x, p)) for p in (90, 95, 99, 99.9, 0, 100, 50)])
        for (n, want) in REFERENCE {
            let mut x = samples(*n, 42);
            let s = Summary::of(&mut x, &[90.0, 95.0, 99.0, 99.9, 0.0, 100.0, 50.0]).unwrap();
            assert_eq!(s.count, *n);
            assert_eq!(s.mean, want[0], "mean n={n}");
            assert_eq!(s.median, want[1], "median n={n}");
            assert_eq!(s.std, want[2], "std n={n}");
            for (i, (_, v)) in s.percentiles.iter().enumerate() {
                assert_eq!(*v, want[3 + i], "percentile #{i} n={n}");
            }
        }
    }

    #[rustfmt::skip]
    const REFERENCE: &[(usize, [f64; 10])] = &[
        (1, [
            808.0982948846539, 808.0982948846539, 0.0, 808.0982948846539, 808.0982948846539,
            808.0982948846539, 808.0982948846539, 808.0982948846539, 808.0982948846539,
            808.0982948846539,
        ]),
        (2, [
            858.1469408224674, 858.1469408224674, 50.04864593781349, 898.1858575727182,
            903.1907221664995, 907.1946138415246, 908.0954894684053, 808.0982948846539,
            908.1955867602809, 858.1469408224674,
        ]),
        (7, [
            437.09686201461534, 321.9197592778335, 322.34630000299626, 848.1372116349047,
            878.1663991975927, 902.1897492477432, 907.5950030090272, 29.162487462387162,
            908.1955867602809, 321.9197592778335,
        ]),
        (8, [
            470.73884152457373, 476.7753259779338, 314.39024234597065, 838.127482447342,
            873.1615346038113, 901.1887763289869, 907.4949057171515, 29.162487462387162,
            908.1955867602809, 476.7753259779338,
        ]),
        (9, [
            453.1537947174858, 321.9197592778335, 300.5540503407006, 828.1177532597793,
            868.1566700100301, 900.1878034102307, 907.394808425276, 29.162487462387162,
            908.1955867602809, 321.9197592778335,
        ]),
        (130, [
            567.419111179693, 611.2236710130392, 292.8710677915583, 931.2575727181545,
            958.1231695085255, 999.1024674022066, 1002.5359358074223, 4.900702106318957,
            1002.6870611835507, 611.2236710130392,
        ]),
        (1000, [
            503.9408485456369, 503.76629889669005, 294.690915203101, 912.9612838515548,
            949.4797392176529, 994.0964493480442, 1002.6871003009027, 0.966900702106319,
            1002.7261785356068, 503.76629889669005,
        ]),
        (4097, [
            499.4362558018209, 493.7883650952859, 288.2392042355915, 902.2098294884654,
            948.0435305917753, 990.4801604814443, 1002.4192337011035, 0.21263791374122368,
            1002.7261785356068, 493.7883650952859,
        ]),
        (20000, [
            500.4687356569709, 496.99197592778336, 288.85378258964266, 902.8226680040121,
            951.8935305917753, 992.3754162487462, 1002.1073460381144, 0.19759277833500502,
            1002.8665997993982, 496.99197592778336,
        ]),
    ];

    #[test]
    fn empty_is_zero_like_vllm() {
        let s = Summary::of(&mut [], &DEFAULT_PERCENTILES).unwrap();
        assert_eq!(s.count, 0);
        assert_eq!((s.mean, s.median, s.std), (0.0, 0.0, 0.0));
        assert_eq!(s.percentile(99.0), Some(0.0));
        assert_eq!(mean(&[]), None);
        assert_eq!(percentile_sorted(&[], 50.0), None);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            Summary::of(&mut [1.0], &[101.0]),
            Err(StatsError::PercentileOutOfRange(101.0))
        );
        assert!(matches!(
            Summary::of(&mut [1.0, f64::NAN], &[50.0]),
            Err(StatsError::NonFinite { index: 1, .. })
        ));
        assert!(parse_percentiles("99,abc").is_err());
        assert!(parse_percentiles("120").is_err());
    }

    #[test]
    fn percentile_words_and_lists() {
        assert_eq!(percentile_word(99.0), "99");
        assert_eq!(percentile_word(99.9), "99.9");
        assert_eq!(percentile_word(50.0), "50");
        assert_eq!(
            parse_percentiles("99.9, p50 99").unwrap(),
            vec![90.0, 95.0, 99.0, 99.9, 50.0]
        );
    }

    #[test]
    fn small_hand_checked() {
        // np.percentile([1,2,3,4], 90) = 3.7; np.std([1,2,3,4]) = 1.118033988749895
        let mut x = vec![4.0, 1.0, 3.0, 2.0];
        let s = Summary::of(&mut x, &[90.0]).unwrap();
        assert_eq!(s.percentile(90.0), Some(3.7));
        assert_eq!(s.std, 1.118033988749895);
        assert_eq!(s.median, 2.5);
        assert_eq!(s.scaled(1000.0).median, 2500.0);
    }
}
