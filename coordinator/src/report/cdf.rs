//! Latency CDFs: one chart per run and latency, one line per sweep point (trials
//! pooled), coloured on a sequential ramp from low to high load.

use super::chart::{Chart, Point, Series, XAxis};
use super::sweep::{groups, run_name, HEIGHT, WIDTH};
use super::{LatencySamples, RunData};

/// Most points drawn per CDF line.
const CDF_POINTS: usize = 300;

/// Empirical CDF, at most [`CDF_POINTS`] points.
pub(crate) fn cdf(samples: &[f64]) -> Vec<Point> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return Vec::new();
    }
    let m = n.min(CDF_POINTS);
    let mut out = Vec::with_capacity(2 * m);
    let mut prev_y = 0.0;
    for k in 0..m {
        // the ((k+1)/m)-quantile's sample and its exact empirical probability
        let i = if m == n {
            k
        } else {
            ((k + 1) * n).div_ceil(m) - 1
        };
        let y = (i + 1) as f64 / n as f64;
        // a step: up at the sample, flat until the next one
        for y in [prev_y, y] {
            out.push(Point {
                x: v[i],
                y,
                ..Default::default()
            });
        }
        prev_y = y;
    }
    out
}

/// A sequential ramp (viridis, dark to light) for the points of one sweep.
const RAMP: [&str; 9] = [
    "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
    "#b5de2b",
];

fn ramp(i: usize, n: usize) -> String {
    let k = if n <= 1 {
        0
    } else {
        i * (RAMP.len() - 1) / (n - 1).max(1)
    };
    RAMP[k.min(RAMP.len() - 1)].to_string()
}

/// One run's CDFs, one line per sweep point (trials pooled), light = more load.
pub(crate) fn cdf_chart(
    r: &RunData,
    title: &str,
    what: &str,
    pick: fn(&LatencySamples) -> &[f64],
) -> Chart {
    let gs = groups(r);
    let mut series = Vec::new();
    for (i, g) in gs.iter().enumerate() {
        let pooled: Vec<f64> = g
            .trials
            .iter()
            .filter_map(|p| r.samples.get(&p.id))
            .flat_map(|s| pick(s).iter().copied())
            .collect();
        if pooled.is_empty() {
            continue;
        }
        series.push(Series {
            name: format!("{} (n={})", g.short, pooled.len()),
            color: ramp(i, gs.len()),
            dashed: false,
            markers: false,
            scatter: false,
            points: cdf(&pooled),
        });
    }
    Chart {
        title: format!("{title} · {}", run_name(r)),
        x_label: format!("{what} (ms)"),
        y_label: "fraction of requests".into(),
        width: WIDTH,
        height: HEIGHT,
        x_axis: XAxis::Linear,
        y_max: Some(1.0),
        x_range: None,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_is_monotone_bounded_and_downsampled() {
        let small = cdf(&[3.0, 1.0, 2.0]);
        let ys: Vec<f64> = small.iter().map(|p| p.y).collect();
        assert_eq!(
            small.iter().map(|p| p.x).collect::<Vec<_>>(),
            vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        );
        let third = 1.0 / 3.0;
        assert_eq!(ys[0], 0.0);
        assert!((ys[1] - third).abs() < 1e-12 && ys[1] == ys[2]);
        assert_eq!(ys[5], 1.0);
        let big: Vec<f64> = (0..10_000).map(|i| i as f64).collect();
        let c = cdf(&big);
        assert_eq!(c.len(), 2 * CDF_POINTS);
        assert!(c.windows(2).all(|w| w[0].x <= w[1].x && w[0].y <= w[1].y));
        assert_eq!(c.last().map(|p| (p.x, p.y)), Some((9999.0, 1.0)));
        assert!(cdf(&[]).is_empty());
    }
}
