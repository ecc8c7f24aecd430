//! Histograms and deltas between two scrapes of one endpoint, and the run-window
//! view of vLLM's metrics ([`EngineWindow`]) that attribution reads.
//!
//! Deltas are taken per series (one label set; a histogram's series ignores `le`)
//! and then summed, so one engine restarting among several is still seen as a
//! reset. A series that went down is a restart: its delta is its value after, and
//! the result says `reset`. A series absent before counts from zero; one absent
//! after (the process went away) is left out.
//!
//! Uses only std, serde, [`super::prom`] and [`super::pfloat`] (the fuzz target
//! compiles it in by path).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::pfloat;
use super::prom::{canonical, Exposition, Sample};

/// A cumulative histogram, as Prometheus exposes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hist {
    /// `(le, cumulative count)`, sorted by `le`, `+Inf` last.
    #[serde(with = "pfloat::pairs")]
    pub buckets: Vec<(f64, f64)>,
    #[serde(with = "pfloat")]
    pub sum: f64,
    #[serde(with = "pfloat")]
    pub count: f64,
}

/// A value between two scrapes. `reset`: the counter (or histogram) went down, the
/// process restarted, and `value` is what it counted since (its value after).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Delta<T> {
    pub value: T,
    pub reset: bool,
}

/// A histogram's headline numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistStats {
    pub count: f64,
    pub sum: f64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Hist {
    /// Mean observation, when there was one.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The `q`-quantile as Prometheus' `histogram_quantile` estimates it: linear
    /// interpolation inside the bucket that holds rank `q·count`, the first bucket
    /// starting at 0 (or at its bound if that is ≤ 0), the `+Inf` bucket answering
    /// the highest finite bound. Counts are made monotonic first. `None` when `q` is
    /// outside [0, 1], there are no observations, or no `+Inf` bucket and a finite
    /// one. Unlike Prometheus, rank 0 picks the first non-empty bucket (not NaN).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.buckets.len();
        if !(0.0..=1.0).contains(&q) || n < 2 || self.buckets[n - 1].0 != f64::INFINITY {
            return None;
        }
        let mut counts = Vec::with_capacity(n);
        let mut run = 0.0f64;
        for &(_, c) in &self.buckets {
            run = run.max(c);
            counts.push(run);
        }
        let total = counts[n - 1];
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let b = (0..n - 1)
            .find(|&i| counts[i] >= rank && counts[i] > 0.0)
            .unwrap_or(n - 1);
        if b == n - 1 {
            return Some(self.buckets[n - 2].0);
        }
        if b == 0 && self.buckets[0].0 <= 0.0 {
            return Some(self.buckets[0].0);
        }
        let end = self.buckets[b].0;
        let (start, count, rank) = match b.checked_sub(1) {
            Some(p) => (self.buckets[p].0, counts[b] - counts[p], rank - counts[p]),
            None => (0.0, counts[b], rank),
        };
        Some(start + (end - start) * (rank / count))
    }

    /// Count, sum, mean, p50, p90, p99.
    pub fn stats(&self) -> HistStats {
        HistStats {
            count: self.count,
            sum: self.sum,
            mean: self.mean(),
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
        }
    }

    /// What was observed since `before`. A lower count, a lower bucket or another
    /// bucket layout is a restart: the delta is then `self`, flagged `reset`.
    pub fn delta(&self, before: &Hist) -> Delta<Hist> {
        let same_layout = self.buckets.len() == before.buckets.len()
            && self
                .buckets
                .iter()
                .zip(&before.buckets)
                .all(|(a, b)| a.0 == b.0);
        let went_down = self.count < before.count
            || self
                .buckets
                .iter()
                .zip(&before.buckets)
                .any(|(a, b)| a.1 < b.1);
        if !same_layout || went_down {
            return Delta {
                value: self.clone(),
                reset: true,
            };
        }
        Delta {
            value: Hist {
                buckets: self
                    .buckets
                    .iter()
                    .zip(&before.buckets)
                    .map(|(a, b)| (a.0, a.1 - b.1))
                    .collect(),
                sum: self.sum - before.sum,
                count: self.count - before.count,
            },
            reset: false,
        }
    }

    /// Adds `other` bucket by bucket (matched by `le`, as PromQL's `sum by (le)`:
    /// exact only when both have the same layout).
    pub fn merge(&mut self, other: &Hist) {
        self.buckets.extend_from_slice(&other.buckets);
        self.buckets = coalesce(std::mem::take(&mut self.buckets));
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// Buckets sorted by `le`, equal bounds added up. O(n log n).
fn coalesce(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
    for (le, c) in v {
        match out.last_mut() {
            Some(last) if last.0 == le => last.1 += c,
            _ => out.push((le, c)),
        }
    }
    out
}

/// The sum of several histograms, by `le`; `None` for none.
fn sum_hists(hists: impl IntoIterator<Item = Hist>) -> Option<Hist> {
    let mut out: Option<Hist> = None;
    for h in hists {
        match &mut out {
            None => out = Some(h),
            Some(o) => {
                o.buckets.extend(h.buckets);
                o.sum += h.sum;
                o.count += h.count;
            }
        }
    }
    out.map(|mut h| {
        h.buckets = coalesce(h.buckets);
        h
    })
}

/// A series: its labels (without `le`), sorted.
pub type SeriesKey = Vec<(String, String)>;

fn series_key(s: &Sample) -> SeriesKey {
    let mut k: SeriesKey = s
        .labels
        .iter()
        .filter(|(n, _)| n != "le")
        .cloned()
        .collect();
    k.sort();
    k
}

/// Finite values of the samples named `sample_name` matching `filter`, by series.
pub fn series_values(
    exp: &Exposition,
    sample_name: &str,
    filter: &[(&str, &str)],
) -> BTreeMap<SeriesKey, f64> {
    let mut out = BTreeMap::new();
    for s in exp.samples_named(sample_name) {
        if s.matches(filter) && s.value.is_finite() {
            *out.entry(series_key(s)).or_insert(0.0) += s.value;
        }
    }
    out
}

/// Histogram `family` (`_bucket`, `_sum`, `_count`; gauge histograms' `_gsum`,
/// `_gcount`) by series; non-finite values are skipped. A series without a `+Inf` bucket gets one from its count;
/// one without a count takes its `+Inf` bucket.
pub fn series_hists(
    exp: &Exposition,
    family: &str,
    filter: &[(&str, &str)],
) -> BTreeMap<SeriesKey, Hist> {
    let fam = canonical(family);
    let mut acc: BTreeMap<SeriesKey, (Hist, Option<f64>)> = BTreeMap::new();
    for s in exp.samples_named(&format!("{fam}_bucket")) {
        let le = s.label("le").and_then(|v| v.trim().parse::<f64>().ok());
        if let Some(le) = le.filter(|v| !v.is_nan()) {
            if s.matches(filter) && s.value.is_finite() {
                acc.entry(series_key(s))
                    .or_default()
                    .0
                    .buckets
                    .push((le, s.value));
            }
        }
    }
    for (suffix, is_sum) in [
        ("_sum", true),
        ("_gsum", true),
        ("_count", false),
        ("_gcount", false),
    ] {
        for s in exp.samples_named(&format!("{fam}{suffix}")) {
            if !s.matches(filter) || !s.value.is_finite() {
                continue;
            }
            let e = acc.entry(series_key(s)).or_default();
            if is_sum {
                e.0.sum += s.value;
            } else {
                e.1 = Some(e.1.unwrap_or(0.0) + s.value);
            }
        }
    }
    acc.into_iter()
        .map(|(k, (mut h, count))| {
            h.buckets = coalesce(h.buckets);
            let inf = h
                .buckets
                .last()
                .filter(|b| b.0 == f64::INFINITY)
                .map(|b| b.1);
            if let (None, Some(c)) = (inf, count) {
                h.buckets.push((f64::INFINITY, c));
            }
            h.count = count.or(inf).unwrap_or(0.0);
            (k, h)
        })
        .collect()
}

impl Exposition {
    /// Histogram `family` (e.g. `vllm:nixl_xfer_time_seconds`) over the series that
    /// match `filter`, summed by `le`; `None` when there is none.
    pub fn histogram(&self, family: &str, filter: &[(&str, &str)]) -> Option<Hist> {
        sum_hists(series_hists(self, family, filter).into_values())
    }
}

/// Counter `sample_name` (e.g. `vllm:prompt_tokens_total`) between two scrapes,
/// summed over the series that match `filter`; `None` when absent after.
pub fn counter_delta(
    before: &Exposition,
    after: &Exposition,
    sample_name: &str,
    filter: &[(&str, &str)],
) -> Option<Delta<f64>> {
    let b = series_values(before, sample_name, filter);
    let a = series_values(after, sample_name, filter);
    if a.is_empty() {
        return None;
    }
    let mut d = Delta {
        value: 0.0,
        reset: false,
    };
    for (k, av) in a {
        match b.get(&k) {
            Some(&bv) if av < bv => {
                d.reset = true;
                d.value += av;
            }
            Some(&bv) => d.value += av - bv,
            None => d.value += av,
        }
    }
    Some(d)
}

/// Histogram `family` between two scrapes, summed over the series that match
/// `filter`; `None` when absent after.
pub fn hist_delta(
    before: &Exposition,
    after: &Exposition,
    family: &str,
    filter: &[(&str, &str)],
) -> Option<Delta<Hist>> {
    let b = series_hists(before, family, filter);
    let mut reset = false;
    let deltas: Vec<Hist> = series_hists(after, family, filter)
        .into_iter()
        .map(|(k, h)| match b.get(&k) {
            Some(bh) => {
                let d = h.delta(bh);
                reset |= d.reset;
                d.value
            }
            None => h,
        })
        .collect();
    sum_hists(deltas).map(|value| Delta { value, reset })
}

/// vLLM's engine metrics over a run's window, from a scrape of one endpoint before
/// and one after. Each field is `None` when the endpoint does not expose it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineWindow {
    /// Requests finished: count delta of `vllm:e2e_request_latency_seconds`.
    pub requests: Option<Delta<f64>>,
    /// `vllm:request_queue_time_seconds`: waiting before scheduled.
    pub queue_time: Option<Delta<Hist>>,
    /// `vllm:request_prefill_time_seconds`.
    pub prefill_time: Option<Delta<Hist>>,
    /// `vllm:request_decode_time_seconds`.
    pub decode_time: Option<Delta<Hist>>,
    /// `vllm:time_to_first_token_seconds`.
    pub ttft: Option<Delta<Hist>>,
    /// `vllm:e2e_request_latency_seconds`.
    pub e2e_latency: Option<Delta<Hist>>,
    /// `vllm:inter_token_latency_seconds`.
    pub inter_token_latency: Option<Delta<Hist>>,
    /// `vllm:nixl_xfer_time_seconds`: KV transfer durations (PD).
    pub nixl_xfer_time: Option<Delta<Hist>>,
    /// `vllm:nixl_bytes_transferred`: bytes per KV transfer.
    pub nixl_bytes_transferred: Option<Delta<Hist>>,
    /// `vllm:nixl_post_time_seconds`: time to post a transfer.
    pub nixl_post_time: Option<Delta<Hist>>,
    /// `vllm:prompt_tokens_total`.
    pub prompt_tokens: Option<Delta<f64>>,
    /// `vllm:generation_tokens_total`.
    pub generation_tokens: Option<Delta<f64>>,
    /// `vllm:nixl_num_failed_transfers_total`.
    pub nixl_failed_transfers: Option<Delta<f64>>,
    /// `vllm:nixl_num_kv_expired_reqs_total`.
    pub nixl_kv_expired_reqs: Option<Delta<f64>>,
    /// `vllm:request_success_total` by `finished_reason`.
    pub request_success: BTreeMap<String, Delta<f64>>,
    /// Any of the above reset (the engine restarted inside the window).
    pub reset: bool,
}

impl EngineWindow {
    /// The window over every series of the endpoint.
    pub fn from_expositions(before: &Exposition, after: &Exposition) -> EngineWindow {
        Self::from_expositions_filtered(before, after, &[])
    }

    /// The window over the series matching `filter` (e.g. one `model_name`).
    pub fn from_expositions_filtered(
        before: &Exposition,
        after: &Exposition,
        filter: &[(&str, &str)],
    ) -> EngineWindow {
        let h = |f: &str| hist_delta(before, after, f, filter);
        let c = |n: &str| counter_delta(before, after, n, filter);
        let e2e_latency = h("vllm:e2e_request_latency_seconds");
        let mut reasons = after.label_values("vllm:request_success_total", "finished_reason");
        reasons.extend(before.label_values("vllm:request_success_total", "finished_reason"));
        reasons.sort();
        reasons.dedup();
        let mut request_success = BTreeMap::new();
        for r in reasons {
            let mut f = filter.to_vec();
            f.push(("finished_reason", &r));
            if let Some(d) = counter_delta(before, after, "vllm:request_success_total", &f) {
                request_success.insert(r.clone(), d);
            }
        }
        let mut w = EngineWindow {
            requests: e2e_latency.as_ref().map(|d| Delta {
                value: d.value.count,
                reset: d.reset,
            }),
            queue_time: h("vllm:request_queue_time_seconds"),
            prefill_time: h("vllm:request_prefill_time_seconds"),
            decode_time: h("vllm:request_decode_time_seconds"),
            ttft: h("vllm:time_to_first_token_seconds"),
            e2e_latency,
            inter_token_latency: h("vllm:inter_token_latency_seconds"),
            nixl_xfer_time: h("vllm:nixl_xfer_time_seconds"),
            nixl_bytes_transferred: h("vllm:nixl_bytes_transferred"),
            nixl_post_time: h("vllm:nixl_post_time_seconds"),
            prompt_tokens: c("vllm:prompt_tokens_total"),
            generation_tokens: c("vllm:generation_tokens_total"),
            nixl_failed_transfers: c("vllm:nixl_num_failed_transfers_total"),
            nixl_kv_expired_reqs: c("vllm:nixl_num_kv_expired_reqs_total"),
            request_success,
            reset: false,
        };
        let hists = [
            &w.queue_time,
            &w.prefill_time,
            &w.decode_time,
            &w.ttft,
            &w.e2e_latency,
            &w.inter_token_latency,
            &w.nixl_xfer_time,
            &w.nixl_bytes_transferred,
            &w.nixl_post_time,
        ];
        let counters = [
            &w.prompt_tokens,
            &w.generation_tokens,
            &w.nixl_failed_transfers,
            &w.nixl_kv_expired_reqs,
        ];
        w.reset = hists.iter().any(|d| d.as_ref().is_some_and(|d| d.reset))
            || counters.iter().any(|d| d.as_ref().is_some_and(|d| d.reset))
            || w.request_success.values().any(|d| d.reset);
        w
    }
}
