//! Scrapes the serving processes' `/metrics` for the length of a run: once before
//! (the baseline), every interval during, once after. A target that fails is
//! recorded (its error text) and tried again next interval; it never stops the run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use crate::store::{Phase, Role, Scraped};
use servescope_loadgen::http::HttpClient;

/// Largest `/metrics` body read (vLLM's is ~50 KiB; Ray's re-export grows with
/// replicas and label sets).
pub const SCRAPE_MAX_BYTES: usize = 16 << 20;
/// Whole-scrape deadline.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// During-run scrapes kept per target, see [`ScrapeLoop`].
pub const MAX_DURING_PER_TARGET: usize = 2000;
/// Body bytes of during-run scrapes kept per target, see [`ScrapeLoop`].
pub const MAX_DURING_BYTES_PER_TARGET: usize = 256 << 20;
/// Shortest scrape interval honoured.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A process to scrape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeTarget {
    /// Short name, e.g. `prefill-0`.
    pub name: String,
    /// Base URL (`http://10.0.0.5:8000`) or the metrics URL itself.
    pub url: String,
    pub role: Role,
}

impl ScrapeTarget {
    /// `url` + `/metrics`, unless `url` already ends with `/metrics`.
    pub fn scrape_url(&self) -> String {
        let base = self.url.trim_end_matches('/');
        if base.ends_with("/metrics") {
            base.to_string()
        } else {
            format!("{base}/metrics")
        }
    }
}

/// Scrapes one target once.
pub async fn scrape_once(client: &HttpClient, target: &ScrapeTarget, phase: Phase) -> Scraped {
    let url = target.scrape_url();
    let res = client.get(&url, SCRAPE_MAX_BYTES, SCRAPE_TIMEOUT).await;
    let t_ns = servescope_proto::now_ns();
    let body = match res {
        Ok((status, bytes)) if (200..300).contains(&status) => {
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        Ok((status, bytes)) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            Err(format!("HTTP {status}: {}", text.trim()))
        }
        Err(e) => Err(e.to_string()),
    };
    Scraped {
        target: target.name.clone(),
        url,
        role: target.role,
        phase,
        t_ns,
        body,
    }
}

/// Scrapes every target concurrently; results by target index, in target order.
async fn scrape_all(
    client: &HttpClient,
    targets: &Arc<[ScrapeTarget]>,
    phase: Phase,
) -> Vec<(usize, Scraped)> {
    let mut set = JoinSet::new();
    for i in 0..targets.len() {
        let (client, targets) = (client.clone(), Arc::clone(targets));
        set.spawn(async move { (i, scrape_once(&client, &targets[i], phase).await) });
    }
    let mut got = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok((i, s)) => {
                got.insert(i, s);
            }
            Err(e) => tracing::warn!("metrics scrape task failed: {e}"),
        }
    }
    got.into_iter().collect()
}

/// The during-run scrapes of one target, thinned to stay bounded.
#[derive(Debug, Default)]
struct Thinned {
    kept: Vec<Scraped>,
    bytes: usize,
    /// Keep one scrape in `stride`.
    stride: u64,
    seen: u64,
}

impl Thinned {
    fn push(&mut self, s: Scraped) {
        let stride = self.stride.max(1);
        self.seen += 1;
        if !(self.seen - 1).is_multiple_of(stride) {
            return;
        }
        self.bytes += body_len(&s);
        self.kept.push(s);
        if self.kept.len() >= MAX_DURING_PER_TARGET || self.bytes > MAX_DURING_BYTES_PER_TARGET {
            let old = std::mem::take(&mut self.kept);
            self.kept = old.into_iter().step_by(2).collect();
            self.bytes = self.kept.iter().map(body_len).sum();
            self.stride = stride * 2;
        }
    }
}

fn body_len(s: &Scraped) -> usize {
    match &s.body {
        Ok(b) | Err(b) => b.len(),
    }
}

/// Scrapes a set of targets for the length of a run.
///
/// Memory is bounded: per target at most [`MAX_DURING_PER_TARGET`] during-run
/// scrapes and [`MAX_DURING_BYTES_PER_TARGET`] of their bodies are kept; reaching
/// either drops every other kept scrape and from then on keeps one scrape in two
/// (then four, …), so what is kept stays evenly spaced over the run. The before and
/// after scrapes are always kept.
pub struct ScrapeLoop {
    client: HttpClient,
    targets: Arc<[ScrapeTarget]>,
    before: Vec<Scraped>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<Scraped>>,
}

impl ScrapeLoop {
    /// Scrapes every target once (phase `Before`, done when this returns), then every
    /// `interval` (at least [`MIN_INTERVAL`]) in the background until [`stop`].
    ///
    /// [`stop`]: ScrapeLoop::stop
    pub async fn start(
        client: HttpClient,
        targets: Vec<ScrapeTarget>,
        interval: Duration,
    ) -> ScrapeLoop {
        let targets: Arc<[ScrapeTarget]> = targets.into();
        let before = scrape_all(&client, &targets, Phase::Before)
            .await
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let (stop, mut stopped) = watch::channel(false);
        let interval = interval.max(MIN_INTERVAL);
        let (c, t) = (client.clone(), Arc::clone(&targets));
        let task = tokio::spawn(async move {
            let mut kept: Vec<Thinned> = t.iter().map(|_| Thinned::default()).collect();
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = ticker.tick() => {}
                }
                let round = tokio::select! {
                    _ = stopped.changed() => break,
                    r = scrape_all(&c, &t, Phase::During) => r,
                };
                for (i, s) in round {
                    if let Some(k) = kept.get_mut(i) {
                        k.push(s);
                    }
                }
            }
            kept.into_iter().flat_map(|k| k.kept).collect()
        });
        ScrapeLoop {
            client,
            targets,
            before,
            stop,
            task,
        }
    }

    /// Stops the background scrapes (one in flight is abandoned), scrapes every
    /// target once more (phase `After`) and returns every scrape in time order (before, during, after).
    pub async fn stop(self) -> Vec<Scraped> {
        self.stop.send_replace(true);
        let during = match self.task.await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("metrics scrape loop failed: {e}");
                Vec::new()
            }
        };
        let after = scrape_all(&self.client, &self.targets, Phase::After).await;
        let mut all = self.before;
        all.extend(during);
        all.extend(after.into_iter().map(|(_, s)| s));
        // Phase first: the wall clock may step backwards during a run.
        all.sort_by_key(|s| (s.phase as u8, s.t_ns));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::engine::prom::{parse, ParseLimits};

    fn scraped(t_ns: u64) -> Scraped {
        Scraped {
            target: "t".into(),
            url: "u".into(),
            role: Role::Unified,
            phase: Phase::During,
            t_ns,
            body: Ok("x".into()),
        }
    }

    #[test]
    fn thinning_keeps_evenly_spaced_scrapes_within_the_bound() {
        let mut t = Thinned::default();
        for i in 0..5000 {
            t.push(scraped(i));
            assert!(t.kept.len() < MAX_DURING_PER_TARGET);
        }
        let ts: Vec<u64> = t.kept.iter().map(|s| s.t_ns).collect();
        assert_eq!(ts, (0..5000).step_by(4).collect::<Vec<u64>>());
        assert_eq!(t.bytes, ts.len());
    }

    #[test]
    fn scrape_url_and_names() {
        let t = |url: &str| ScrapeTarget {
            name: "p0".into(),
            url: url.into(),
            role: Role::Prefill,
        };
        assert_eq!(t("http://h:8000").scrape_url(), "http://h:8000/metrics");
        assert_eq!(t("http://h:8000/").scrape_url(), "http://h:8000/metrics");
        assert_eq!(
            t("http://h:8000/metrics").scrape_url(),
            "http://h:8000/metrics"
        );
        for r in [Role::Prefill, Role::Decode, Role::Unified, Role::Proxy] {
            assert_eq!(Role::parse(&r.to_string()), Some(r));
            let json = serde_json::to_string(&r).expect("json");
            assert_eq!(json, format!("\"{r}\""));
        }
        for p in [Phase::Before, Phase::During, Phase::After] {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        assert_eq!(Role::parse("router"), None);
    }

    #[tokio::test]
    async fn scrapes_the_simulator_over_http_and_records_an_unreachable_target() {
        let sim = servescope_sim::start(
            servescope_sim::SimConfig::default(),
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
        .expect("sim");
        // A port nobody listens on: bind, note it, close.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        let targets = vec![
            ScrapeTarget {
                name: "unified-0".into(),
                url: sim.url(),
                role: Role::Unified,
            },
            ScrapeTarget {
                name: "dead".into(),
                url: format!("http://{dead}"),
                role: Role::Decode,
            },
        ];
        let client = HttpClient::new(4);
        let too_small = client
            .get(&format!("{}/metrics", sim.url()), 10, SCRAPE_TIMEOUT)
            .await;
        assert!(matches!(
            too_small,
            Err(servescope_loadgen::http::HttpError::TooLarge { limit: 10 })
        ));

        let lp = ScrapeLoop::start(client, targets, Duration::from_millis(50)).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let all = lp.stop().await;
        sim.shutdown().await;

        let of = |target: &str, phase: Phase| {
            all.iter()
                .filter(|s| s.target == target && s.phase == phase)
                .collect::<Vec<_>>()
        };
        assert_eq!(of("unified-0", Phase::Before).len(), 1);
        assert!(!of("unified-0", Phase::During).is_empty());
        assert_eq!(of("unified-0", Phase::After).len(), 1);
        for s in all.iter().filter(|s| s.target == "unified-0") {
            let body = s.body.as_ref().expect("sim answers");
            let e = parse(body, ParseLimits::default());
            assert!(e.errors.is_empty(), "{:?}", e.errors);
            assert!(e.value("vllm:num_requests_running", &[]).is_some());
            assert_eq!(s.url, format!("{}/metrics", sim_url_of(s)));
            assert!(s.t_ns > 0);
        }
        let dead_scrapes: Vec<_> = all.iter().filter(|s| s.target == "dead").collect();
        assert!(dead_scrapes.len() >= 3, "before, during, after");
        assert!(dead_scrapes.iter().all(|s| s.body.is_err()));
        assert_eq!(of("dead", Phase::Before).len(), 1);
        assert_eq!(of("dead", Phase::After).len(), 1);
        let order: Vec<(u8, u64)> = all.iter().map(|s| (s.phase as u8, s.t_ns)).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "time order");
    }

    fn sim_url_of(s: &Scraped) -> &str {
        s.url.trim_end_matches("/metrics")
    }
}
