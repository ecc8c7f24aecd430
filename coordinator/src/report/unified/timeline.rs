//! Everything with a time on one axis (seconds since the earliest request or
//! sample of the page): each request's TTFT at the time it was sent, the requests
//! in flight, the load points' spans, and the node telemetry charts.

use super::telemetry::{Kind, Telemetry};
use crate::report::chart::{Chart, Point, Series, XAxis, PALETTE};
use crate::report::svg::format_value;
use crate::store::{Store, StoreError};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 330.0;
/// Most markers a request chart draws per run (every n-th request beyond that).
const MAX_MARKERS: usize = 3000;

/// One request on the clock: sent, first token (if any), finished; TTFT (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Req {
    pub send_ns: i64,
    pub finished_ns: i64,
    pub ttft_ms: Option<f64>,
    pub failed: bool,
}

/// A load run's requests and point spans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRequests {
    pub name: String,
    pub requests: Vec<Req>,
    /// (label, start ns, end ns) per stored point.
    pub points: Vec<(String, i64, i64)>,
}

impl RunRequests {
    pub fn span(&self) -> Option<(i64, i64)> {
        let lo = self.requests.iter().map(|r| r.send_ns).min()?;
        let hi = self.requests.iter().map(|r| r.finished_ns).max()?;
        Some((lo, hi))
    }
}

/// The measured requests of a run's points.
pub fn read_requests(store: &Store, run: i64, name: &str) -> Result<RunRequests, StoreError> {
    let mut out = RunRequests {
        name: name.to_string(),
        ..Default::default()
    };
    for p in store.points(run)? {
        let (a, b) = store.point_span(p.id)?;
        out.points.push((p.label.clone(), a, b));
        for r in store.point_requests(p.id)? {
            let rec = &r.record;
            let ttft = rec
                .first_token_ns
                .or_else(|| rec.chunks.first().map(|c| c.at_ns))
                .map(|t| t.saturating_sub(rec.scheduled_ns) as f64 / 1e6);
            out.requests.push(Req {
                send_ns: rec.send_ns as i64,
                finished_ns: rec.finished_ns as i64,
                ttft_ms: ttft.filter(|_| rec.error.is_none()),
                failed: rec.error.is_some(),
            });
        }
    }
    Ok(out)
}

/// The shared axis: origin and range (s) of every chart on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub t0_ns: i64,
    pub seconds: f64,
}

impl Axis {
    pub fn x(&self, t_ns: i64) -> f64 {
        (t_ns - self.t0_ns) as f64 / 1e9
    }

    fn chart(&self, title: &str, y_label: &str, series: Vec<Series>) -> Chart {
        Chart {
            title: title.into(),
            x_label: "seconds since the first request or sample".into(),
            y_label: y_label.into(),
            width: WIDTH,
            height: HEIGHT,
            x_axis: XAxis::Linear,
            y_max: None,
            x_range: Some((0.0, self.seconds.max(1e-3))),
            series,
        }
    }
}

fn color(i: usize) -> String {
    PALETTE[i % PALETTE.len()].to_string()
}

/// TTFT of every request at its send time (failed ones in their own series), and
/// the requests in flight over time, one colour per run.
pub fn request_charts(axis: &Axis, runs: &[RunRequests]) -> Vec<Chart> {
    let mut ttft = Vec::new();
    let mut inflight = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let step = r.requests.len().div_ceil(MAX_MARKERS).max(1);
        let ok: Vec<Point> = r
            .requests
            .iter()
            .step_by(step)
            .filter_map(|q| {
                q.ttft_ms.map(|v| Point {
                    x: axis.x(q.send_ns),
                    y: v,
                    ..Default::default()
                })
            })
            .collect();
        ttft.push(Series {
            name: format!("{} TTFT", r.name),
            color: color(i),
            markers: true,
            scatter: true,
            points: ok,
            ..Default::default()
        });
        let failed: Vec<Point> = r
            .requests
            .iter()
            .filter(|q| q.failed)
            .map(|q| Point {
                x: axis.x(q.send_ns),
                y: 0.0,
                tip: Some("failed".into()),
                ..Default::default()
            })
            .collect();
        if !failed.is_empty() {
            ttft.push(Series {
                name: format!("{} failed (at 0)", r.name),
                color: "#b00020".into(),
                markers: true,
                dashed: true,
                scatter: true,
                points: failed,
            });
        }
        let mut ev: Vec<(i64, i64)> = r
            .requests
            .iter()
            .flat_map(|q| [(q.send_ns, 1), (q.finished_ns, -1)])
            .collect();
        ev.sort();
        let mut n = 0i64;
        let mut pts = Vec::with_capacity(ev.len() * 2);
        for (t, d) in ev {
            pts.push(Point {
                x: axis.x(t),
                y: n as f64,
                ..Default::default()
            });
            n += d;
            pts.push(Point {
                x: axis.x(t),
                y: n as f64,
                ..Default::default()
            });
        }
        let keep = pts.len().div_ceil(2 * MAX_MARKERS).max(1);
        let pts: Vec<Point> = pts.into_iter().step_by(keep).collect();
        let mut labels = Vec::new();
        for (label, a, b) in &r.points {
            labels.push(Point {
                x: axis.x(*a),
                y: 0.0,
                label: Some(label.clone()),
                tip: Some(format!("{label}: {} s", format_value((b - a) as f64 / 1e9))),
                ..Default::default()
            });
        }
        inflight.push(Series {
            name: format!("{} in flight", r.name),
            color: color(i),
            points: pts,
            ..Default::default()
        });
        inflight.push(Series {
            name: format!("{} point starts", r.name),
            color: "#555".into(),
            markers: true,
            scatter: true,
            points: labels,
            ..Default::default()
        });
    }
    vec![
        axis.chart("TTFT of each request, at its send time", "TTFT (ms)", ttft),
        axis.chart("Requests in flight", "requests", inflight),
    ]
}

/// One chart per kind of telemetry the runs hold, in [`Kind::ALL`] order.
pub fn telemetry_charts(axis: &Axis, t: &Telemetry) -> Vec<Chart> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let Some(m) = t.series.get(&kind) else {
            continue;
        };
        let series: Vec<Series> = m
            .iter()
            .enumerate()
            .map(|(i, (name, pts))| Series {
                name: name.clone(),
                color: color(i),
                points: pts
                    .iter()
                    .map(|(t, v)| Point {
                        x: axis.x(*t),
                        y: *v,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let (title, unit) = kind.title();
        out.push(axis.chart(title, unit, series));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_step_up_and_down() {
        let axis = Axis {
            t0_ns: 0,
            seconds: 3.0,
        };
        let r = RunRequests {
            name: "run 1".into(),
            requests: vec![
                Req {
                    send_ns: 0,
                    finished_ns: 2_000_000_000,
                    ttft_ms: Some(5.0),
                    failed: false,
                },
                Req {
                    send_ns: 1_000_000_000,
                    finished_ns: 3_000_000_000,
                    ttft_ms: None,
                    failed: true,
                },
            ],
            points: vec![("c=2".into(), 0, 3_000_000_000)],
        };
        let c = request_charts(&axis, &[r]);
        assert_eq!(c[0].series[0].points.len(), 1);
        assert_eq!(c[0].series[1].name, "run 1 failed (at 0)");
        let peak = c[1].series[0]
            .points
            .iter()
            .map(|p| p.y)
            .fold(0.0, f64::max);
        assert_eq!(peak, 2.0);
        assert_eq!(c[1].series[0].points.last().map(|p| p.y), Some(0.0));
        let svg = c[1].render();
        assert!(svg.contains(">c=2</text>") && !svg.contains("NaN"));
    }
}
