//! When requests are sent: closed loop (N in flight) or open loop (Poisson, or gamma
//! with a burstiness factor, as `vllm bench serve` draws them), optionally capped by
//! a maximum concurrency. Every request carries its **scheduled** time: a request
//! that waits for a slot, or that the dispatcher sends late, has that wait counted
//! in its latency (no coordinated omission), and the dispatcher's own lag is
//! recorded so a saturated client is visible.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How requests arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// Keep `concurrency` requests in flight.
    Closed { concurrency: usize },
    /// `rate` requests per second; inter-arrival times gamma-distributed with shape
    /// `burstiness` (1 = Poisson; < 1 burstier; → ∞ evenly spaced), mean 1/rate.
    Open {
        rate: f64,
        burstiness: f64,
        max_concurrency: Option<usize>,
    },
}

/// Errors in a plan.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("concurrency must be at least 1")]
    Concurrency,
    #[error("request rate must be a positive number of requests per second (got {0})")]
    Rate(f64),
    #[error("burstiness must be a positive number (got {0})")]
    Burstiness(f64),
    #[error("give a number of requests or a duration")]
    Unbounded,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub arrival: Arrival,
    /// Stop after this many requests…
    pub num_requests: Option<usize>,
    /// …or once this long has passed since the first (whichever comes first).
    pub duration: Option<Duration>,
    pub seed: u64,
}

/// Timing of one dispatched request.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub index: usize,
    /// When it should have been sent (open loop: its arrival; closed loop: when a
    /// slot freed).
    pub scheduled: Instant,
    /// How late the dispatcher itself was in starting it (client saturation).
    pub dispatch_lag: Duration,
}

impl Plan {
    pub fn validate(&self) -> Result<(), PlanError> {
        match &self.arrival {
            Arrival::Closed { concurrency: 0 } => return Err(PlanError::Concurrency),
            Arrival::Open {
                rate,
                burstiness,
                max_concurrency,
            } => {
                if !(rate.is_finite() && *rate > 0.0) {
                    return Err(PlanError::Rate(*rate));
                }
                if !(burstiness.is_finite() && *burstiness > 0.0) {
                    return Err(PlanError::Burstiness(*burstiness));
                }
                if *max_concurrency == Some(0) {
                    return Err(PlanError::Concurrency);
                }
            }
            _ => {}
        }
        if self.num_requests.is_none() && self.duration.is_none() {
            return Err(PlanError::Unbounded);
        }
        Ok(())
    }
}

/// A small seeded generator (xorshift64*) and the distributions the plans need.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        // Box–Muller.
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Gamma(shape k, scale θ) by Marsaglia–Tsang (with the k < 1 boost).
    pub fn gamma(&mut self, k: f64, theta: f64) -> f64 {
        if k < 1.0 {
            let u = self.unit();
            return self.gamma(k + 1.0, theta) * u.powf(1.0 / k);
        }
        let d = k - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v * theta;
            }
        }
    }
}

/// Runs the plan: calls `send(slot)` for each request at its time and returns the
/// results in index order. `send` owns everything the request needs.
pub async fn run<T, F, Fut>(plan: &Plan, send: F) -> Result<Vec<T>, PlanError>
where
    T: Send + 'static,
    F: Fn(Slot) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    plan.validate()?;
    let start = Instant::now();
    let end = plan.duration.map(|d| start + d);
    let limit = plan.num_requests.unwrap_or(usize::MAX);
    let mut tasks = Vec::new();
    match &plan.arrival {
        Arrival::Closed { concurrency } => {
            let sem = Arc::new(Semaphore::new(*concurrency));
            for index in 0..limit {
                let permit = match Arc::clone(&sem).acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                };
                let now = Instant::now();
                if end.is_some_and(|e| now >= e) {
                    break;
                }
                let fut = send(Slot {
                    index,
                    scheduled: now,
                    dispatch_lag: Duration::ZERO,
                });
                tasks.push(tokio::spawn(async move {
                    let out = fut.await;
                    drop(permit);
                    out
                }));
            }
        }
        Arrival::Open {
            rate,
            burstiness,
            max_concurrency,
        } => {
            let sem = max_concurrency.map(|c| Arc::new(Semaphore::new(c)));
            let mut rng = Rng::new(plan.seed);
            let theta = 1.0 / (rate * burstiness);
            let mut t = start;
            for index in 0..limit {
                if index > 0 {
                    t += Duration::from_secs_f64(rng.gamma(*burstiness, theta));
                }
                if end.is_some_and(|e| t >= e) {
                    break;
                }
                tokio::time::sleep_until(t).await;
                let lag = Instant::now().saturating_duration_since(t);
                let sem = sem.clone();
                let fut = send(Slot {
                    index,
                    scheduled: t,
                    dispatch_lag: lag,
                });
                tasks.push(tokio::spawn(async move {
                    // Waiting for a slot happens after the scheduled time: it counts.
                    let _permit = match sem {
                        Some(s) => s.acquire_owned().await.ok(),
                        None => None,
                    };
                    fut.await
                }));
            }
        }
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(v) = t.await {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn gamma_moments() {
        let mut r = Rng::new(3);
        for (k, theta) in [(1.0, 0.5), (0.5, 2.0), (4.0, 0.25)] {
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| r.gamma(k, theta)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!(
                (mean - k * theta).abs() / (k * theta) < 0.02,
                "k={k} mean {mean}"
            );
            assert!(
                (var - k * theta * theta).abs() / (k * theta * theta) < 0.05,
                "k={k} var {var}"
            );
        }
    }

    #[tokio::test]
    async fn closed_loop_never_exceeds_concurrency() {
        let inflight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let plan = Plan {
            arrival: Arrival::Closed { concurrency: 4 },
            num_requests: Some(40),
            duration: None,
            seed: 1,
        };
        let out = run(&plan, |s| {
            let (inflight, peak) = (Arc::clone(&inflight), Arc::clone(&peak));
            async move {
                let n = inflight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inflight.fetch_sub(1, Ordering::SeqCst);
                s.index
            }
        })
        .await
        .unwrap();
        assert_eq!(out, (0..40).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn open_loop_rate_and_scheduled_times() {
        let plan = Plan {
            arrival: Arrival::Open {
                rate: 500.0,
                burstiness: 1.0,
                max_concurrency: Some(2),
            },
            num_requests: Some(200),
            duration: None,
            seed: 7,
        };
        let t0 = Instant::now();
        let out = run(&plan, |s| async move {
            // Each takes 10 ms with only 2 slots: most requests wait; the wait counts.
            tokio::time::sleep(Duration::from_millis(10)).await;
            (s.scheduled, Instant::now())
        })
        .await
        .unwrap();
        let span = (out[199].0 - out[0].0).as_secs_f64();
        assert!((span - 199.0 / 500.0).abs() < 0.15, "arrivals span {span}");
        // Latency from the scheduled time grows as the queue builds (≈ 1 s for the last).
        let last = (out[199].1 - out[199].0).as_secs_f64();
        assert!(last > 0.3, "waiting counted: {last}");
        assert!(t0.elapsed() >= Duration::from_millis(990));
    }

    #[tokio::test]
    async fn duration_bound_and_bad_plans() {
        let plan = Plan {
            arrival: Arrival::Closed { concurrency: 2 },
            num_requests: None,
            duration: Some(Duration::from_millis(100)),
            seed: 1,
        };
        let out = run(&plan, |_| async {
            tokio::time::sleep(Duration::from_millis(10)).await
        })
        .await
        .unwrap();
        assert!((15..=25).contains(&out.len()), "{}", out.len());
        let bad = Plan {
            arrival: Arrival::Open {
                rate: 0.0,
                burstiness: 1.0,
                max_concurrency: None,
            },
            num_requests: Some(1),
            duration: None,
            seed: 1,
        };
        assert_eq!(
            run(&bad, |_| async {}).await.unwrap_err(),
            PlanError::Rate(0.0)
        );
        let unb = Plan {
            num_requests: None,
            ..bad
        };
        assert!(unb.validate().is_err());
    }
}
