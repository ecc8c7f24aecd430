//! A load point's configuration as stored (`load_points.config`): how its requests
//! arrived, its trial, the client's largest dispatch lag, the probe's verdict and,
//! for an experiment's point, the deployment and workload it measured. Typed here;
//! stored as the JSON every earlier version wrote, and read back from it.

use std::collections::BTreeMap;

use servescope_loadgen::schedule::Arrival;

/// The correctness probe's verdict after a point.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeVerdict {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ProbeVerdict {
    pub fn passed() -> ProbeVerdict {
        ProbeVerdict {
            ok: true,
            detail: None,
        }
    }

    pub fn failed(detail: String) -> ProbeVerdict {
        ProbeVerdict {
            ok: false,
            detail: Some(detail),
        }
    }

    /// Why it failed; `None` when it passed.
    pub fn failure(&self) -> Option<&str> {
        (!self.ok).then(|| self.detail.as_deref().unwrap_or(""))
    }
}

/// What an experiment's point measured, besides its arrival.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExpPointFacts {
    pub deployment: String,
    /// The load as written in the experiment file (per replica when scaled).
    #[serde(default)]
    pub nominal: f64,
    #[serde(default)]
    pub input_tokens: u32,
    #[serde(default)]
    pub output_tokens: u32,
    #[serde(default = "mixed")]
    pub workload_mode: String,
    #[serde(default = "one")]
    pub gpus: u32,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn mixed() -> String {
    "mixed".into()
}

fn one() -> u32 {
    1
}

/// A stored point's configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct PointConfig {
    pub arrival: Arrival,
    pub trial: usize,
    /// Largest dispatcher lag (client saturation), ms; unknown in some old stores.
    pub max_dispatch_lag_ms: Option<f64>,
    /// `None` when no probe was sent.
    pub probe: Option<ProbeVerdict>,
    /// Set for an experiment's point.
    pub exp: Option<ExpPointFacts>,
}

impl PointConfig {
    /// Concurrency of a closed-loop point.
    pub fn concurrency(&self) -> Option<usize> {
        match self.arrival {
            Arrival::Closed { concurrency } => Some(concurrency),
            Arrival::Open { .. } => None,
        }
    }

    /// Request rate of an open-loop point.
    pub fn request_rate(&self) -> Option<f64> {
        match self.arrival {
            Arrival::Open { rate, .. } => Some(rate),
            Arrival::Closed { .. } => None,
        }
    }
}

/// An arrival as stored (also in a load run's arguments).
pub fn arrival_json(a: &Arrival) -> serde_json::Value {
    serde_json::to_value(StoredArrival::from(a.clone())).unwrap_or_default()
}

/// The stored JSON shape of [`Arrival`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
enum StoredArrival {
    Closed {
        concurrency: usize,
    },
    Open {
        request_rate: f64,
        #[serde(default = "poisson")]
        burstiness: f64,
        #[serde(default)]
        max_concurrency: Option<usize>,
    },
}

fn poisson() -> f64 {
    1.0
}

/// The stored JSON shape of [`PointConfig`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(flatten)]
    arrival: StoredArrival,
    #[serde(default)]
    trial: usize,
    #[serde(default)]
    max_dispatch_lag_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probe: Option<ProbeVerdict>,
    #[serde(flatten)]
    exp: Option<ExpPointFacts>,
}

impl From<StoredArrival> for Arrival {
    fn from(a: StoredArrival) -> Arrival {
        match a {
            StoredArrival::Closed { concurrency } => Arrival::Closed { concurrency },
            StoredArrival::Open {
                request_rate,
                burstiness,
                max_concurrency,
            } => Arrival::Open {
                rate: request_rate,
                burstiness,
                max_concurrency,
            },
        }
    }
}

impl From<Arrival> for StoredArrival {
    fn from(a: Arrival) -> StoredArrival {
        match a {
            Arrival::Closed { concurrency } => StoredArrival::Closed { concurrency },
            Arrival::Open {
                rate,
                burstiness,
                max_concurrency,
            } => StoredArrival::Open {
                request_rate: rate,
                burstiness,
                max_concurrency,
            },
        }
    }
}

impl From<Stored> for PointConfig {
    fn from(s: Stored) -> PointConfig {
        PointConfig {
            arrival: s.arrival.into(),
            trial: s.trial,
            max_dispatch_lag_ms: s.max_dispatch_lag_ms,
            probe: s.probe,
            exp: s.exp,
        }
    }
}

impl From<PointConfig> for Stored {
    fn from(c: PointConfig) -> Stored {
        Stored {
            arrival: c.arrival.into(),
            trial: c.trial,
            max_dispatch_lag_ms: c.max_dispatch_lag_ms,
            probe: c.probe,
            exp: c.exp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: serde_json::Value) -> PointConfig {
        serde_json::from_value(v).expect("config")
    }

    #[test]
    fn load_points_of_earlier_versions_read_back() {
        let c = read(json!({"mode": "closed", "concurrency": 8, "trial": 1,
            "max_dispatch_lag_ms": 0.5, "probe": {"ok": false, "detail": "gibberish"}}));
        assert_eq!(c.arrival, Arrival::Closed { concurrency: 8 });
        assert_eq!((c.trial, c.max_dispatch_lag_ms), (1, Some(0.5)));
        assert_eq!(
            c.probe.as_ref().and_then(ProbeVerdict::failure),
            Some("gibberish")
        );
        assert_eq!(c.exp, None);
        let o = read(
            json!({"mode": "open", "request_rate": 4.0, "burstiness": 0.5,
            "max_concurrency": null, "trial": 0, "max_dispatch_lag_ms": 1.0, "probe": null}),
        );
        assert_eq!(
            o.arrival,
            Arrival::Open {
                rate: 4.0,
                burstiness: 0.5,
                max_concurrency: None
            }
        );
        assert_eq!((o.probe.clone(), o.request_rate()), (None, Some(4.0)));
    }

    #[test]
    fn experiment_points_of_earlier_versions_read_back() {
        let c = read(
            json!({"mode": "open", "concurrency": null, "request_rate": 2.0,
            "nominal": 1.0, "input_tokens": 128, "output_tokens": 16, "workload_mode": "mixed",
            "trial": 0, "deployment": "d2", "gpus": 2, "replicas": 2, "labels": {"tp": "1"},
            "max_dispatch_lag_ms": 0.1}),
        );
        assert_eq!(c.request_rate(), Some(2.0));
        let e = c.exp.clone().expect("exp facts");
        assert_eq!(
            (e.deployment.as_str(), e.replicas, e.input_tokens),
            ("d2", 2, 128)
        );
        assert_eq!(e.labels.get("tp").map(String::as_str), Some("1"));
        let back = read(serde_json::to_value(&c).expect("json"));
        assert_eq!(back, c);
        let closed = read(
            json!({"mode": "closed", "concurrency": 4, "request_rate": null,
            "trial": 2, "deployment": "d1"}),
        );
        assert_eq!(closed.concurrency(), Some(4));
        assert_eq!(closed.max_dispatch_lag_ms, None);
    }

    #[test]
    fn written_json_keeps_the_stored_names() {
        let c = PointConfig {
            arrival: Arrival::Open {
                rate: 3.0,
                burstiness: 1.0,
                max_concurrency: Some(5),
            },
            trial: 1,
            max_dispatch_lag_ms: Some(2.0),
            probe: Some(ProbeVerdict::passed()),
            exp: None,
        };
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(
            v,
            json!({"mode": "open", "request_rate": 3.0, "burstiness": 1.0,
                "max_concurrency": 5, "trial": 1, "max_dispatch_lag_ms": 2.0, "probe": {"ok": true}})
        );
        assert_eq!(read(v), c);
        assert_eq!(
            arrival_json(&Arrival::Closed { concurrency: 2 }),
            json!({"mode": "closed", "concurrency": 2})
        );
    }
}
