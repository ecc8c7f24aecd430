//! `servescope pd run`: a load sweep through the P/D proxy while the coordinator
//! scrapes every prefill and decode instance's `/metrics` (at the edges of every
//! point and every `scrape_interval` in between), collects the engines'
//! `llm_request` spans on its OTLP receiver, and afterwards pulls the agents'
//! telemetry of the same minutes; everything is stored under the run (a `pd` run
//! from its start, linked to its telemetry and fabric runs), so
//! `servescope attribute RUN` can join it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::analysis::otlp::OtlpError;
use crate::orchestration::connect::AgentEndpoint;
use crate::orchestration::load::runner::LoadError;
use crate::orchestration::load::runner::{
    run_sweep, LoadConfig, LoadProgress, PointHook, PointResult,
};
use crate::orchestration::otlp_receiver::Receiver;
use crate::orchestration::record::{record, RecordConfig};
use crate::orchestration::scrape::{scrape_once, Phase, Role, ScrapeLoop, ScrapeTarget, Scraped};
use crate::store::{RunKind, RunLinks, Store, StoreError};
use servescope_loadgen::http::HttpClient;

/// Errors of `pd run`.
#[derive(Debug, thiserror::Error)]
pub enum PdRunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    #[error("{0}")]
    Config(String),
}

/// What `pd run` does.
pub struct PdRunConfig {
    /// The sweep; its target is the proxy.
    pub load: LoadConfig,
    pub prefill: Vec<String>,
    pub decode: Vec<String>,
    pub scrape_interval: Duration,
    /// A receiver the engines export their spans to (already listening).
    pub otlp: Option<Receiver>,
    /// How long to wait after the last request for the engines' span batches.
    pub span_wait: Duration,
    /// Agents on the engines' nodes: their telemetry of the run is recorded after it.
    pub agents: Vec<AgentEndpoint>,
    /// A stored fabric probe run whose bandwidth is the KV path's capacity.
    pub fabric_run: Option<i64>,
}

/// The outcome.
pub struct PdRunOutcome {
    pub run_id: i64,
    pub points: Vec<PointResult>,
    pub scrapes: usize,
    pub scrape_failures: usize,
    pub spans: usize,
    pub telemetry_run: Option<i64>,
    pub otlp_listen: Option<SocketAddr>,
}

fn targets(prefill: &[String], decode: &[String]) -> Vec<ScrapeTarget> {
    let mut t = Vec::new();
    for (i, u) in prefill.iter().enumerate() {
        t.push(ScrapeTarget {
            name: format!("prefill-{i}"),
            url: u.clone(),
            role: Role::Prefill,
        });
    }
    for (i, u) in decode.iter().enumerate() {
        t.push(ScrapeTarget {
            name: format!("decode-{i}"),
            url: u.clone(),
            role: Role::Decode,
        });
    }
    t
}

/// Runs the experiment; see the module doc.
pub async fn pd_run(
    mut cfg: PdRunConfig,
    progress: Arc<LoadProgress>,
) -> Result<PdRunOutcome, PdRunError> {
    if cfg.decode.is_empty() {
        return Err(PdRunError::Config(
            "give at least one decode instance (--decode URL)".into(),
        ));
    }
    let tg = targets(&cfg.prefill, &cfg.decode);
    let client = HttpClient::new(tg.len().max(1) * 2);
    let edges: Arc<Mutex<Vec<Scraped>>> = Arc::default();
    let hook: PointHook = {
        let (tg, client, edges) = (tg.clone(), client.clone(), Arc::clone(&edges));
        PointHook(Arc::new(move |m| {
            let (tg, client, edges) = (tg.clone(), client.clone(), Arc::clone(&edges));
            Box::pin(async move {
                let phase = if m.end { Phase::After } else { Phase::Before };
                let got = futures_util::future::join_all(
                    tg.iter().map(|t| scrape_once(&client, t, phase)),
                )
                .await;
                edges.lock().unwrap_or_else(|e| e.into_inner()).extend(got);
            })
        }))
    };
    cfg.load.point_hook = Some(hook);
    let db = cfg.load.db.clone();
    let scraper = ScrapeLoop::start(client.clone(), tg.clone(), cfg.scrape_interval).await;
    let started = servescope_proto::now_ns();
    let links = RunLinks {
        fabric_run: cfg.fabric_run,
        ..Default::default()
    };
    let proxy = cfg.load.target.base_url.clone();
    let load = run_sweep(cfg.load, RunKind::Pd, links, progress).await;
    let mut scrapes = scraper.stop().await;
    let (run_id, points) = load?;
    scrapes.extend(std::mem::take(
        &mut *edges.lock().unwrap_or_else(|e| e.into_inner()),
    ));
    scrapes.sort_by_key(|s| s.t_ns);
    let scrape_failures = scrapes.iter().filter(|s| s.body.is_err()).count();
    let mut store = Store::open(&db)?;
    store.save_scrapes(run_id, &scrapes)?;
    let mut spans = Vec::new();
    let mut otlp_listen = None;
    let mut otlp_stats = serde_json::Value::Null;
    if let Some(r) = cfg.otlp.take() {
        otlp_listen = Some(r.local_addr());
        tokio::time::sleep(cfg.span_wait).await;
        let got = r.shutdown().await?;
        otlp_stats = serde_json::to_value(got.stats).unwrap_or_default();
        // Spans of requests outside this run (earlier traffic) are kept too: the join
        // ignores what matches no request.
        spans = got.requests;
        store.save_request_spans(run_id, &spans)?;
    }
    let mut telemetry_run = None;
    if !cfg.agents.is_empty() {
        let mut rc = RecordConfig::new(cfg.agents.clone(), Duration::from_secs(2), db.clone());
        rc.include_history = true;
        rc.label = format!("pd run {run_id}: agents' telemetry");
        let out = record(rc, Default::default())
            .await
            .map_err(|e| PdRunError::Config(format!("recording the agents: {e}")))?;
        telemetry_run = Some(out.run_id);
    }
    let pd = json!({
        "proxy": proxy,
        "prefill": cfg.prefill, "decode": cfg.decode,
        "scrape_interval_s": cfg.scrape_interval.as_secs_f64(),
        "otlp_listen": otlp_listen.map(|a| a.to_string()), "otlp": otlp_stats,
        "started_ns": started,
    });
    store.add_run_arg(run_id, "pd", &pd)?;
    if let Some(t) = telemetry_run {
        store.link_telemetry(run_id, t)?;
    }
    Ok(PdRunOutcome {
        run_id,
        points,
        scrapes: scrapes.len(),
        scrape_failures,
        spans: spans.len(),
        telemetry_run,
        otlp_listen,
    })
}
