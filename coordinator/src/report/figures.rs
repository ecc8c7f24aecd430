//! The report's charts, built from the runs: trials of a point are grouped (mean with
//! min–max whiskers), one series per run (and per statistic), x = concurrency
//! (closed loop) or request rate (open loop).

use super::cdf::cdf_chart;
use super::chart::{Chart, Point, Series, XAxis, PALETTE};
use super::svg::format_value;
use super::sweep::{groups, run_name, x_label, HEIGHT, WIDTH};
use super::RunData;
use servescope_loadgen::metrics::Aggregate;
use servescope_loadgen::stats::Summary;

fn color(i: usize) -> String {
    PALETTE[i % PALETTE.len()].to_string()
}

type Stat = fn(&Aggregate) -> Option<f64>;

fn latency(s: &Summary, p: Option<f64>) -> Option<f64> {
    if s.count == 0 {
        return None;
    }
    match p {
        None => Some(s.mean),
        Some(p) => s.percentile(p),
    }
}

/// Mean over trials with min–max whiskers (when trials differ) of `stat`.
fn stat_series(run: &RunData, i: usize, name: String, dashed: bool, stat: Stat) -> Series {
    let mut points = Vec::new();
    for g in groups(run) {
        let vals: Vec<f64> = g
            .trials
            .iter()
            .filter_map(|p| stat(&p.aggregate))
            .filter(|v| v.is_finite())
            .collect();
        if vals.is_empty() {
            continue;
        }
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = vals.len() > 1 && hi > lo;
        let trials = if vals.len() > 1 {
            format!(
                " (mean of {} trials, {}–{})",
                vals.len(),
                format_value(lo),
                format_value(hi)
            )
        } else {
            String::new()
        };
        points.push(Point {
            x: g.x,
            y: mean,
            lo: spread.then_some(lo),
            hi: spread.then_some(hi),
            label: None,
            tip: Some(format!(
                "{name}, {}: {}{trials}",
                g.short,
                format_value(mean)
            )),
        });
    }
    Series {
        name,
        color: color(i),
        dashed,
        markers: true,
        scatter: false,
        points,
    }
}

fn sweep_chart(title: &str, y_label: &str, runs: &[RunData], series: Vec<Series>) -> Chart {
    Chart {
        title: title.into(),
        x_label: x_label(runs).into(),
        y_label: y_label.into(),
        width: WIDTH,
        height: HEIGHT,
        x_axis: XAxis::Sweep,
        y_max: None,
        x_range: None,
        series,
    }
}

/// Mean and p99 of a latency vs load, one colour per run.
fn latency_chart(runs: &[RunData], title: &str, what: &str, mean: Stat, p99: Stat) -> Chart {
    let mut series = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        series.push(stat_series(
            r,
            i,
            format!("{} mean", run_name(r)),
            false,
            mean,
        ));
        series.push(stat_series(r, i, format!("{} p99", run_name(r)), true, p99));
    }
    sweep_chart(title, &format!("{what} (ms)"), runs, series)
}

/// Output tokens/s against a latency median (the throughput–latency trade-off): one
/// curve per run, points labelled with their concurrency or rate.
fn tradeoff_chart(runs: &[RunData], title: &str, x_label: &str, lat: Stat) -> Chart {
    let mut series = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let mut points = Vec::new();
        for g in groups(r) {
            let pairs: Vec<(f64, f64)> = g
                .trials
                .iter()
                .filter_map(|p| lat(&p.aggregate).map(|x| (x, p.aggregate.output_throughput)))
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let n = pairs.len() as f64;
            let x = pairs.iter().map(|p| p.0).sum::<f64>() / n;
            let y = pairs.iter().map(|p| p.1).sum::<f64>() / n;
            points.push(Point {
                x,
                y,
                label: Some(g.short.clone()),
                tip: Some(format!(
                    "{}, {}: {} ms, {} tok/s",
                    run_name(r),
                    g.short,
                    format_value(x),
                    format_value(y)
                )),
                ..Default::default()
            });
        }
        series.push(Series {
            name: run_name(r),
            color: color(i),
            dashed: false,
            markers: true,
            scatter: false,
            points,
        });
    }
    Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: "output throughput (tokens/s)".into(),
        width: WIDTH,
        height: HEIGHT,
        x_axis: XAxis::Linear,
        y_max: None,
        x_range: None,
        series,
    }
}

/// All charts, in page order, each with a section name.
pub(crate) fn charts(runs: &[RunData]) -> Vec<(&'static str, Chart)> {
    let tput = |f: Stat, title: &str, y: &str| {
        let series = runs
            .iter()
            .enumerate()
            .map(|(i, r)| stat_series(r, i, run_name(r), false, f))
            .collect();
        sweep_chart(title, y, runs, series)
    };
    let mut out = vec![(
        "Throughput",
        tput(
            |a| Some(a.output_throughput),
            "Output throughput vs load",
            "output tokens/s",
        ),
    )];
    let has = |f: Stat| {
        runs.iter()
            .flat_map(|r| &r.points)
            .any(|p| f(&p.aggregate).is_some())
    };
    let per_gpu: Stat = |a| a.per_gpu.map(|n| n.output_throughput);
    let per_replica: Stat = |a| a.per_replica.map(|n| n.output_throughput);
    if has(per_gpu) {
        out.push((
            "Throughput",
            tput(
                per_gpu,
                "Output throughput per GPU",
                "output tokens/s per GPU",
            ),
        ));
    }
    if has(per_replica) {
        out.push((
            "Throughput",
            tput(
                per_replica,
                "Output throughput per replica",
                "output tokens/s per replica",
            ),
        ));
    }
    out.push((
        "Throughput",
        tput(
            |a| Some(a.request_throughput),
            "Request throughput vs load",
            "requests/s",
        ),
    ));
    out.push((
        "Latency vs load",
        latency_chart(
            runs,
            "Time to first token",
            "TTFT",
            |a| latency(&a.ttft_ms, None),
            |a| latency(&a.ttft_ms, Some(99.0)),
        ),
    ));
    out.push((
        "Latency vs load",
        latency_chart(
            runs,
            "Time per output token",
            "TPOT",
            |a| latency(&a.tpot_ms, None),
            |a| latency(&a.tpot_ms, Some(99.0)),
        ),
    ));
    out.push((
        "Throughput vs latency",
        tradeoff_chart(runs, "Throughput vs TPOT", "median TPOT (ms)", |a| {
            (a.tpot_ms.count > 0).then_some(a.tpot_ms.median)
        }),
    ));
    out.push((
        "Throughput vs latency",
        tradeoff_chart(
            runs,
            "Throughput vs end-to-end latency",
            "median E2E latency (ms)",
            |a| (a.e2el_ms.count > 0).then_some(a.e2el_ms.median),
        ),
    ));
    for r in runs {
        out.push((
            "Latency distributions",
            cdf_chart(r, "TTFT CDF per point", "TTFT", |s| &s.ttft_ms),
        ));
        out.push((
            "Latency distributions",
            cdf_chart(r, "E2E latency CDF per point", "E2E latency", |s| {
                &s.e2el_ms
            }),
        ));
    }
    out
}
