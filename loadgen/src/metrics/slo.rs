//! Service-level objectives for goodput and their text form (`ttft:500ms,…`).

use serde::{Deserialize, Serialize};

use super::record::RequestLatencies;
use super::MetricsError;

/// Service-level objectives for goodput, in ms (vLLM's `--goodput`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Slo {
    /// TTFT bound (from the scheduled time).
    pub ttft_ms: Option<f64>,
    /// TPOT bound.
    pub tpot_ms: Option<f64>,
    /// E2EL bound (from the scheduled time).
    pub e2el_ms: Option<f64>,
}

impl std::str::FromStr for Slo {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_slo(s)
    }
}

/// Parses `ttft:500ms,tpot:50ms,e2el:2.5s` (items separated by commas and/or spaces;
/// units `us`, `ms`, `s`; a bare number is ms, as vLLM's `--goodput ttft:500`).
/// Values must be non-negative, as vLLM requires.
pub fn parse_slo(text: &str) -> Result<Slo, MetricsError> {
    let mut slo = Slo::default();
    let mut any = false;
    for item in text.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
        any = true;
        let (name, value) = item
            .split_once(':')
            .ok_or_else(|| MetricsError::SloMissingColon(item.to_string()))?;
        let name = name.trim().to_ascii_lowercase();
        let slot = match name.as_str() {
            "ttft" => &mut slo.ttft_ms,
            "tpot" => &mut slo.tpot_ms,
            "e2el" => &mut slo.e2el_ms,
            _ => return Err(MetricsError::SloUnknownMetric(name)),
        };
        if slot.is_some() {
            return Err(MetricsError::SloDuplicate(name));
        }
        let bad = |reason: &str| MetricsError::SloBadValue {
            metric: name.clone(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let v = value.trim();
        let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
        let (num, unit) = v.split_at(split);
        let factor = match unit {
            "" | "ms" => 1.0,
            "s" => 1000.0,
            "us" | "µs" => 0.001,
            _ => return Err(bad("unknown unit (use us, ms or s)")),
        };
        let x: f64 = num.parse().map_err(|_| bad("not a number"))?;
        if !x.is_finite() || x < 0.0 {
            return Err(bad("must be a finite non-negative number"));
        }
        *slot = Some(x * factor);
    }
    if !any {
        return Err(MetricsError::EmptySlo);
    }
    Ok(slo)
}

impl Slo {
    /// Whether a successful request meets every bound (vLLM: `slo >= value`).
    pub fn is_good(&self, lat: &RequestLatencies) -> bool {
        let ttft_ok = self
            .ttft_ms
            .is_none_or(|b| lat.ttft_ms.is_some_and(|t| t <= b));
        let tpot_ok = self.tpot_ms.is_none_or(|b| lat.tpot_ms.unwrap_or(0.0) <= b);
        let e2el_ok = self.e2el_ms.is_none_or(|b| lat.e2el_ms <= b);
        ttft_ok && tpot_ok && e2el_ok
    }
}
