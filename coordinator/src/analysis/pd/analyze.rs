//! `servescope attribute RUN`: a load or pd run's requests joined with the engines'
//! scrapes and spans from the store, decomposed per request and per point, the KV
//! transfers analysed, and the diagnosis rules applied.

use std::collections::HashMap;

use super::attribution::{Attribution, DecodeSummary, Gauges, PointAttribution};
use super::decompose::KvRate;
use super::decompose::{decompose, first_on_pair, Breakdown, Offsets};
use super::diagnose::diagnose;
use super::join::{join, JoinStats};
use super::kv::{self, KvAnalysis};
use super::kv_path::{self, KvOp};
use super::logs::{EngineLog, RequestEvent};
use super::runlevel;
use super::PdError;
use crate::analysis::engine::{parse, EngineWindow, Exposition, ParseLimits};
use crate::store::Role;
use crate::store::{RunKind, RunLinks, Store, StoredRequest};
use servescope_loadgen::stats::percentile;

/// Options of an attribution.
#[derive(Debug, Clone, Default)]
pub struct AttributeOptions {
    /// Fabric capacity for the KV path, GB/s (overrides the store's fabric probes).
    pub capacity_gbps: Option<f64>,
    /// Requests shown in the slowest-request waterfall per point.
    pub slowest: usize,
    /// Engine logs read (name, parsed): KV stats when no metrics have them, request
    /// lines for the join.
    pub engine_logs: Vec<(String, EngineLog)>,
}

/// The inventories a run recorded, with their agents' addresses.
fn inventories(
    store: &Store,
    run: i64,
) -> Result<Vec<(String, servescope_proto::v1::Inventory)>, PdError> {
    let mut v = Vec::new();
    for a in store.run_agents(run)? {
        if let Some(i) = store.inventory(run, a.agent_id)? {
            v.push((a.address, i));
        }
    }
    Ok(v)
}

struct Scrape {
    target: String,
    role: Role,
    t_ns: u64,
    exp: Exposition,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Window of `target` around [from, to]: the last scrape at or before `from` and the
/// first at or after `to`.
fn window<'a>(
    sc: &'a [Scrape],
    target: &str,
    from: u64,
    to: u64,
) -> Option<(&'a Scrape, &'a Scrape)> {
    let mine: Vec<&Scrape> = sc.iter().filter(|s| s.target == target).collect();
    let before = mine.iter().rev().find(|s| s.t_ns <= from)?;
    let after = mine.iter().find(|s| s.t_ns >= to)?;
    Some((before, after))
}

fn gauges(sc: &[Scrape], decode: &[String], from: u64, to: u64) -> Gauges {
    let mut g = Gauges::default();
    for s in sc
        .iter()
        .filter(|s| decode.contains(&s.target) && s.t_ns > from && s.t_ns < to)
    {
        let v = |n: &str, f: &[(&str, &str)]| s.exp.value(n, f).unwrap_or(0.0);
        g.scrapes += 1;
        g.running += v("vllm:num_requests_running", &[]);
        g.waiting_capacity += v(
            "vllm:num_requests_waiting_by_reason",
            &[("reason", "capacity")],
        );
        g.waiting_deferred += v(
            "vllm:num_requests_waiting_by_reason",
            &[("reason", "deferred")],
        );
        g.kv_waiting_to_start += v(
            "vllm:num_requests_kv_fetch_by_stage",
            &[("stage", "waiting_to_start")],
        );
        g.kv_in_progress += v(
            "vllm:num_requests_kv_fetch_by_stage",
            &[("stage", "in_progress")],
        );
    }
    if g.scrapes > 0 {
        let n = g.scrapes as f64;
        g.running /= n;
        g.waiting_capacity /= n;
        g.waiting_deferred /= n;
        g.kv_waiting_to_start /= n;
        g.kv_in_progress /= n;
    }
    g
}

/// Clock offsets (host − coordinator) of the agents recorded with this run.
fn offsets(store: &Store, links: &RunLinks) -> Offsets {
    let mut o = Offsets::new();
    if let Some(t) = links.telemetry_run {
        if let Ok(agents) = store.run_agents(t) {
            for a in agents {
                if let Some(off) = a.offset_ns {
                    o.insert(a.hostname, off);
                }
            }
        }
    }
    o
}

/// Attributes run `run` of `store`.
pub fn attribute(store: &Store, run: i64, opts: &AttributeOptions) -> Result<Attribution, PdError> {
    let points = store.points(run)?;
    if points.is_empty() {
        return Err(PdError::NoPoints(run));
    }
    let links = store.run_links(run)?;
    let mut notes = Vec::new();
    let mut scrapes = Vec::new();
    for s in store.scrapes(run)? {
        match s.body {
            Ok(text) => scrapes.push(Scrape {
                target: s.target,
                role: s.role,
                t_ns: s.t_ns,
                exp: parse(&text, ParseLimits::default()),
            }),
            Err(e) => notes.push(format!("scrape of {} failed at {}: {e}", s.target, s.t_ns)),
        }
    }
    notes.truncate(20);
    let mut targets: Vec<(String, Role)> = Vec::new();
    for s in &scrapes {
        if !targets.iter().any(|t| t.0 == s.target) {
            targets.push((s.target.clone(), s.role));
        }
    }
    let names = |r: &[Role]| -> Vec<String> {
        targets
            .iter()
            .filter(|t| r.contains(&t.1))
            .map(|t| t.0.clone())
            .collect()
    };
    let (p_names, d_names) = (
        names(&[Role::Prefill]),
        names(&[Role::Decode, Role::Unified]),
    );
    if scrapes.is_empty() {
        notes.push("no engine scrapes stored for this run: metrics-based parts are empty".into());
    }
    let spans = store.request_spans(run)?;
    let mut all: Vec<StoredRequest> = Vec::new();
    let mut spans_of_point = Vec::new();
    for p in &points {
        let reqs = store.point_requests(p.id)?;
        let (from, to) = store.point_span(p.id)?;
        spans_of_point.push((p, all.len(), reqs.len(), from as u64, to as u64));
        all.extend(reqs);
    }
    let (joined, mut jstats) = join(&all, &spans);
    if spans.is_empty() {
        notes.push("no llm_request spans: P-side stages per request are unknown (give the engines --otlp-traces-endpoint)".into());
    }
    // Whole-run windows for the KV analysis.
    let whole = |names: &[String]| -> Vec<(String, EngineWindow)> {
        names
            .iter()
            .filter_map(|n| {
                let mine: Vec<&Scrape> = scrapes.iter().filter(|s| &s.target == n).collect();
                let (a, b) = (mine.first()?, mine.last()?);
                Some((n.clone(), EngineWindow::from_expositions(&a.exp, &b.exp)))
            })
            .collect()
    };
    let series: Vec<(String, Vec<(u64, &Exposition)>)> = d_names
        .iter()
        .map(|n| {
            (
                n.clone(),
                scrapes
                    .iter()
                    .filter(|s| &s.target == n)
                    .map(|s| (s.t_ns, &s.exp))
                    .collect(),
            )
        })
        .collect();
    let mut kv = kv::analyze(&whole(&d_names), &whole(&p_names), &series);
    // vLLM's NixlConnector pulls: the decode instance READs the prefill's blocks.
    kv.op = KvOp::Read;
    if let Some(fr) = links.fabric_run {
        let per_transfer = (kv.transfers > 0.0).then(|| kv.bytes / kv.transfers);
        kv.path = kv_path::select(fr, &store.fabric_probes(fr)?, kv.op, per_transfer);
        if let Some(p) = kv.path.as_mut() {
            let mut invs = inventories(store, fr)?;
            if let Some(t) = links.telemetry_run {
                invs.extend(inventories(store, t)?);
            }
            if let Some((g, src)) = kv_path::line_rate(p, &invs) {
                p.line_rate_gbps = Some(g);
                p.line_rate_source = Some(src);
            }
            kv.capacity_gbps = Some(p.gbps);
            kv.capacity_source = Some(if p.nixl {
                format!("NIXL probe in fabric run {fr}, {} at {} B", p.op, p.size)
            } else {
                format!("fabric probe run {fr}")
            });
        }
    }
    if let Some(c) = opts.capacity_gbps {
        kv.capacity_gbps = Some(c);
        kv.capacity_source = Some("given (--capacity-gbps)".into());
    }
    apply_logs(&opts.engine_logs, &all, &mut kv, &mut jstats, &mut notes);
    if let Some(t) = links.telemetry_run {
        let (from, to) = spans_of_point.iter().fold((i64::MAX, i64::MIN), |acc, p| {
            (acc.0.min(p.3 as i64), acc.1.max(p.4 as i64))
        });
        kv.nodes = kv::node_bytes(store, t, from, to)?;
        kv.carrier = kv::carrier(&kv.nodes, kv.bytes);
    }
    let offs = offsets(store, &links);
    let first = first_on_pair(&joined);
    let mut out_points = Vec::new();
    for (p, start, n, from, to) in spans_of_point {
        let js = &joined[start..start + n];
        let firsts = &first[start..start + n];
        // The typical D wait of the point's other requests, for the handshake split.
        let mut waits: Vec<f64> = js
            .iter()
            .zip(firsts)
            .filter(|(_, f)| !**f)
            .filter_map(|(j, _)| decompose(j, &kv.rates, &offs, None)?.get("d_wait"))
            .collect();
        let typical = percentile(&mut waits, 50.0).unwrap_or(0.0);
        let mut bds: Vec<Breakdown> = js
            .iter()
            .zip(firsts)
            .filter_map(|(j, f)| decompose(j, &kv.rates, &offs, f.then_some(typical)))
            .collect();
        let mut order: Vec<&'static str> = Vec::new();
        let mut sums: HashMap<&'static str, f64> = HashMap::new();
        for b in &bds {
            for c in &b.components {
                if !order.contains(&c.name) {
                    order.push(c.name);
                }
                *sums.entry(c.name).or_default() += c.ms;
            }
        }
        let nb = bds.len().max(1) as f64;
        let components_mean = order
            .iter()
            .map(|k| (k.to_string(), sums[k] / nb))
            .collect();
        let col = |f: &dyn Fn(&Breakdown) -> Option<f64>| -> Vec<f64> {
            bds.iter().filter_map(f).collect()
        };
        let decode = DecodeSummary {
            client_tpot_p50_ms: percentile(&mut col(&|b| b.decode.client_tpot_ms), 50.0),
            engine_itl_p50_ms: percentile(&mut col(&|b| b.decode.engine_itl_ms), 50.0),
            streaming_overhead_p50_ms: percentile(
                &mut col(&|b| b.decode.streaming_overhead_ms),
                50.0,
            ),
            tokens_per_burst_mean: mean(&col(&|b| b.decode.tokens_per_burst)),
            burst_gap_p50_ms: percentile(&mut col(&|b| b.decode.burst_gap_p50_ms), 50.0),
        };
        let win = |names: &[String]| -> Vec<EngineWindow> {
            names
                .iter()
                .filter_map(|t| window(&scrapes, t, from, to))
                .map(|(a, b)| EngineWindow::from_expositions(&a.exp, &b.exp))
                .collect()
        };
        let (pw, dw) = (win(&p_names), win(&d_names));
        let agg = &p.aggregate;
        let run_level = runlevel::decompose(
            &pw.iter().collect::<Vec<_>>(),
            &dw.iter().collect::<Vec<_>>(),
            agg.ttft_ms.mean,
            agg.completed,
        );
        let mut lags: Vec<f64> = js
            .iter()
            .map(|j| j.client.dispatch_lag_ns as f64 / 1e6)
            .collect();
        let lag_max = lags.iter().copied().fold(0.0, f64::max);
        let probe = p.config.probe.as_ref();
        bds.sort_by(|a, b| b.ttft_ms.total_cmp(&a.ttft_ms));
        let keep = opts.slowest.max(1);
        let breakdowns = if opts.slowest == usize::MAX {
            bds
        } else {
            bds.into_iter().take(keep).collect()
        };
        out_points.push(PointAttribution {
            point_id: p.id,
            point: p.point,
            trial: p.trial,
            label: p.label.clone(),
            concurrency: p.config.concurrency().map(|c| c as f64),
            requests: n,
            failed: agg.failed as usize,
            errors_by_class: agg.errors_by_class.clone(),
            ttft_p50_ms: (agg.ttft_ms.count > 0).then_some(agg.ttft_ms.median),
            ttft_mean_ms: (agg.ttft_ms.count > 0).then_some(agg.ttft_ms.mean),
            tpot_p50_ms: (agg.tpot_ms.count > 0).then_some(agg.tpot_ms.median),
            components_mean,
            breakdowns,
            run_level,
            decode,
            gauges: gauges(&scrapes, &d_names, from, to),
            probe_ok: probe.map(|v| v.ok),
            probe_detail: probe.and_then(|v| v.detail.clone()),
            dispatch_lag_p99_ms: percentile(&mut lags, 99.0),
            dispatch_lag_max_ms: lag_max,
        });
    }
    let disaggregated = store.run(run)?.kind == RunKind::Pd
        || !p_names.is_empty()
        || kv.transfers > 0.0
        || kv.failed > 0.0
        || kv.expired > 0.0;
    let mut a = Attribution {
        run_id: run,
        join: jstats,
        points: out_points,
        kv,
        notes,
        disaggregated,
        findings: Vec::new(),
    };
    a.findings = diagnose(&a);
    Ok(a)
}

/// Engine logs: KV stats where the metrics had none (else a cross-check note), and
/// which requests the logs name.
fn apply_logs(
    logs: &[(String, EngineLog)],
    reqs: &[StoredRequest],
    kv: &mut KvAnalysis,
    jstats: &mut JoinStats,
    notes: &mut Vec<String>,
) {
    if logs.is_empty() {
        return;
    }
    let mut sum = super::logs::KvFromLogs::default();
    let mut named = std::collections::HashSet::new();
    let mut expired = Vec::new();
    for (_, l) in logs {
        sum.lines += l.kv.lines;
        sum.transfers += l.kv.transfers;
        sum.bytes += l.kv.bytes;
        sum.xfer_s += l.kv.xfer_s;
        sum.failed += l.kv.failed + l.transfer_failures as f64;
        sum.expired += l.kv.expired;
        for r in &l.requests {
            named.insert(r.request_id.as_str());
            if r.event == RequestEvent::KvExpired {
                expired.push(r.request_id.clone());
                kv.expired_requests.push(r.request_id.clone());
            }
        }
    }
    jstats.with_engine_log = reqs
        .iter()
        .filter(|r| named.contains(r.request_id.as_str()))
        .count();
    if !expired.is_empty() {
        expired.truncate(10);
        notes.push(format!(
            "engine logs: KV blocks expired for request(s) {}",
            expired.join(", ")
        ));
    }
    if sum.lines == 0 {
        return;
    }
    if kv.transfers > 0.0 {
        notes.push(format!(
            "engine logs' KV Transfer metrics: {:.0} transfers at {} (metrics: {:.0} at {})",
            sum.transfers,
            sum.gbps().map_or("–".into(), |g| format!("{g:.2} GB/s")),
            kv.transfers,
            kv.effective_gbps
                .map_or("–".into(), |g| format!("{g:.2} GB/s"))
        ));
        return;
    }
    kv.transfers = sum.transfers;
    kv.bytes = sum.bytes;
    kv.failed = sum.failed;
    kv.expired = sum.expired;
    kv.effective_gbps = sum.gbps();
    let tokens: u64 = reqs
        .iter()
        .filter(|r| r.record.error.is_none())
        .map(|r| r.record.input_tokens)
        .sum();
    if sum.xfer_s > 0.0 && tokens > 0 {
        kv.rates.insert(
            String::new(),
            KvRate {
                bytes_per_token: sum.bytes / tokens as f64,
                bytes_per_s: sum.bytes / sum.xfer_s,
            },
        );
    }
    notes.push(format!(
        "KV transfers from {} 'KV Transfer metrics' log line(s) (no vllm:nixl_* metrics scraped); bytes per token assume every request's prompt was transferred",
        sum.lines
    ));
}
