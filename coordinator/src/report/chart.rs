//! A line chart rendered as one `<svg>` element: axes with ticks and labels, a
//! legend that wraps above the plot, series as lines with markers, min–max whiskers
//! and optional point labels. All embedded text is escaped.

use std::fmt::Write;

use super::layout::{legend_layout, place_label, FONT, LEFT, RIGHT};
use super::svg::{escape, format_tick, linear_ticks, log_ticks, text_width, Scale};

/// One data point; `lo`/`hi` draw a whisker (e.g. min–max over trials).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// Text drawn beside the marker.
    pub label: Option<String>,
    /// Tooltip (`<title>`).
    pub tip: Option<String>,
}

/// A line of points in one colour.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub dashed: bool,
    pub markers: bool,
    /// Markers only, no line between them (a scatter).
    pub scatter: bool,
    pub points: Vec<Point>,
}

/// How the x axis is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAxis {
    /// Linear with round ticks.
    #[default]
    Linear,
    /// Logarithmic with ticks at the data's x values when they span ≥ 8×, else linear.
    Sweep,
}

/// A chart's content and size (px).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub width: f64,
    pub height: f64,
    pub x_axis: XAxis,
    /// Fixed y range top (e.g. 1 for a CDF); else from the data.
    pub y_max: Option<f64>,
    /// Fixed x range of a linear axis (charts that share a time axis); else from the
    /// data.
    pub x_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
}

/// The categorical palette (d3 category10).
pub const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

const BOTTOM: f64 = 50.0;
const TITLE_H: f64 = 28.0;
const LEGEND_ROW: f64 = 18.0;

fn f(v: f64) -> String {
    format!("{v:.1}")
}

fn x_scale(c: &Chart, xs: &[f64], range: (f64, f64)) -> (Scale, Vec<f64>, f64) {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if c.x_axis == XAxis::Sweep && lo > 0.0 && hi / lo >= 8.0 {
        let scale = Scale::log((lo / 1.25, hi * 1.25), range);
        let mut distinct: Vec<f64> = xs.to_vec();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let mut ticks: Vec<f64> = Vec::new();
        let source = if distinct.len() <= 16 {
            distinct
        } else {
            log_ticks(lo, hi)
        };
        for t in source {
            if ticks
                .last()
                .is_none_or(|&p| scale.map(t) - scale.map(p) >= 30.0)
            {
                ticks.push(t);
            }
        }
        let step = ticks
            .iter()
            .map(|t| if t.fract() == 0.0 { 1.0 } else { 0.01 })
            .fold(1.0, f64::min);
        return (scale, ticks, step);
    }
    if let Some((a, b)) = c
        .x_range
        .filter(|(a, b)| b > a && c.x_axis == XAxis::Linear)
    {
        let ((a, b), ticks) = linear_ticks(a, b, 6);
        let step = ticks.get(1).zip(ticks.first()).map_or(1.0, |(b, a)| b - a);
        return (Scale::linear((a, b), range), ticks, step);
    }
    let lo = if c.x_axis == XAxis::Sweep {
        lo.min(0.0)
    } else {
        // keep markers and their labels off the axes
        let pad = (hi - lo) * 0.05;
        if lo >= 0.0 {
            (lo - pad).max(0.0)
        } else {
            lo - pad
        }
    };
    let hi = if c.x_axis == XAxis::Sweep {
        hi
    } else {
        hi + (hi - lo) * 0.05
    };
    let ((a, b), ticks) = linear_ticks(lo, hi, 6);
    let step = ticks.get(1).zip(ticks.first()).map_or(1.0, |(b, a)| b - a);
    (Scale::linear((a, b), range), ticks, step)
}

impl Chart {
    /// The chart as a standalone `<svg>` element.
    pub fn render(&self) -> String {
        let (w, h) = (self.width, self.height);
        let names: Vec<&str> = self.series.iter().map(|s| s.name.as_str()).collect();
        let (legend, rows) = legend_layout(&names, w);
        let top = TITLE_H + rows as f64 * LEGEND_ROW + 10.0;
        let (px0, px1, py0, py1) = (LEFT, w - RIGHT, h - BOTTOM, top);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif" font-size="{FONT}">"#
        );
        let _ = write!(
            s,
            r##"<rect width="{w}" height="{h}" fill="#fff"/><text x="{}" y="19" font-size="15" font-weight="600" fill="#222">{}</text>"##,
            f(LEFT),
            escape(&self.title)
        );
        for (i, (ser, (row, x))) in self.series.iter().zip(&legend).enumerate() {
            let lx = LEFT + x;
            let ly = TITLE_H + *row as f64 * LEGEND_ROW + 6.0;
            let dash = if ser.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r##"<g class="legend" data-i="{i}"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2.5"{dash}/><text x="{}" y="{}" fill="#333">{}</text></g>"##,
                f(lx),
                f(ly),
                f(lx + 24.0),
                f(ly),
                escape(&ser.color),
                f(lx + 30.0),
                f(ly + 4.0),
                escape(&ser.name)
            );
        }
        let pts = || self.series.iter().flat_map(|s| s.points.iter());
        let xs: Vec<f64> = pts().map(|p| p.x).filter(|x| x.is_finite()).collect();
        if xs.is_empty() {
            let _ = write!(
                s,
                r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#bbb"/><text x="{}" y="{}" text-anchor="middle" fill="#888">no data</text></svg>"##,
                f(px0),
                f(py1),
                f(px1 - px0),
                f(py0 - py1),
                f((px0 + px1) / 2.0),
                f((py0 + py1) / 2.0)
            );
            return s;
        }
        let (xs_scale, xticks, xstep) = x_scale(self, &xs, (px0, px1));
        let ymax = self.y_max.unwrap_or_else(|| {
            pts()
                .flat_map(|p| [p.y, p.hi.unwrap_or(p.y)])
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max)
        });
        let ((ya, yb), yticks) = linear_ticks(0.0, ymax, 5);
        let ystep = yticks.get(1).map_or(1.0, |t| t - ya);
        let ys = Scale::linear((ya, yb), (py0, py1));
        // grid + ticks
        for t in &yticks {
            let y = ys.map(*t);
            let _ = write!(
                s,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#e5e5e5"/><text x="{}" y="{}" text-anchor="end" fill="#444">{}</text>"##,
                f(px0),
                f(y),
                f(px1),
                f(y),
                f(px0 - 6.0),
                f(y + 4.0),
                escape(&format_tick(*t, ystep))
            );
        }
        for t in &xticks {
            let x = xs_scale.map(*t);
            let _ = write!(
                s,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#f0f0f0"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#444"/><text x="{}" y="{}" text-anchor="middle" fill="#444">{}</text>"##,
                f(x),
                f(py1),
                f(x),
                f(py0),
                f(x),
                f(py0),
                f(x),
                f(py0 + 5.0),
                f(x),
                f(py0 + 18.0),
                escape(&format_tick(*t, xstep))
            );
        }
        let _ = write!(
            s,
            r##"<path d="M{} {}V{}H{}" fill="none" stroke="#444"/>"##,
            f(px0),
            f(py1),
            f(py0),
            f(px1)
        );
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#222">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle" fill="#222">{}</text>"##,
            f((px0 + px1) / 2.0),
            f(h - 12.0),
            escape(&self.x_label),
            f((py0 + py1) / 2.0),
            escape(&self.y_label)
        );
        let mut placed = Vec::new();
        for ser in &self.series {
            self.render_series(&mut s, ser, &xs_scale, &ys, &mut placed);
        }
        s.push_str("</svg>");
        s
    }

    fn render_series(
        &self,
        s: &mut String,
        ser: &Series,
        xs: &Scale,
        ys: &Scale,
        placed: &mut Vec<[f64; 4]>,
    ) {
        let color = escape(&ser.color);
        let coords: Vec<(f64, f64)> = ser
            .points
            .iter()
            .filter(|p| p.x.is_finite() && p.y.is_finite())
            .map(|p| (xs.map(p.x), ys.map(p.y)))
            .collect();
        if coords.len() > 1 && !ser.scatter {
            let path: Vec<String> = coords
                .iter()
                .map(|(x, y)| format!("{},{}", f(*x), f(*y)))
                .collect();
            let dash = if ser.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round"{dash}/>"#,
                path.join(" ")
            );
        }
        for p in ser
            .points
            .iter()
            .filter(|p| p.x.is_finite() && p.y.is_finite())
        {
            let (x, y) = (xs.map(p.x), ys.map(p.y));
            if let (Some(lo), Some(hi)) = (p.lo, p.hi) {
                let (y0, y1) = (ys.map(lo), ys.map(hi));
                let _ = write!(
                    s,
                    r#"<path d="M{} {}V{}M{} {}H{}M{} {}H{}" stroke="{color}" stroke-width="1.5" fill="none"/>"#,
                    f(x),
                    f(y0),
                    f(y1),
                    f(x - 4.0),
                    f(y0),
                    f(x + 4.0),
                    f(x - 4.0),
                    f(y1),
                    f(x + 4.0)
                );
            }
            if ser.markers {
                let fill = if ser.dashed { "#fff" } else { color.as_str() };
                let tip = p
                    .tip
                    .as_ref()
                    .map(|t| format!("<title>{}</title>", escape(t)))
                    .unwrap_or_default();
                let _ = write!(
                    s,
                    r#"<circle cx="{}" cy="{}" r="3.5" fill="{fill}" stroke="{color}" stroke-width="1.5">{tip}</circle>"#,
                    f(x),
                    f(y)
                );
            }
            if let Some(l) = &p.label {
                let bounds = [xs.r0, ys.r1 - 12.0, xs.r1 + RIGHT - 2.0, ys.r0];
                // a label that would overlap another is left out (the tooltip has it)
                if let Some((lx, ly, anchor)) =
                    place_label(x, y, text_width(l, 10.5), bounds, placed)
                {
                    let _ = write!(
                        s,
                        r##"<text x="{}" y="{}" font-size="10.5" fill="#333" text-anchor="{anchor}">{}</text>"##,
                        f(lx),
                        f(ly),
                        escape(l)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>) -> Chart {
        Chart {
            title: "T <1>".into(),
            x_label: "concurrency".into(),
            y_label: "tok/s".into(),
            width: 600.0,
            height: 360.0,
            x_axis: XAxis::Sweep,
            y_max: None,
            x_range: None,
            series,
        }
    }

    #[test]
    fn renders_axes_series_whiskers_and_escapes() {
        let s = Series {
            name: "run 1 <b>".into(),
            color: PALETTE[0].into(),
            dashed: false,
            markers: true,
            scatter: false,
            points: vec![
                Point {
                    x: 1.0,
                    y: 10.0,
                    ..Default::default()
                },
                Point {
                    x: 64.0,
                    y: 90.0,
                    lo: Some(80.0),
                    hi: Some(95.0),
                    label: Some("c=64".into()),
                    tip: Some("a & b".into()),
                },
            ],
        };
        let svg = chart(vec![s]).render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("T &lt;1&gt;") && svg.contains("run 1 &lt;b&gt;"));
        assert!(svg.contains("<polyline") && svg.contains("<title>a &amp; b</title>"));
        assert!(svg.contains(">c=64</text>"));
        // log sweep axis: ticks at the data's x values
        assert!(svg.contains(">1</text>") && svg.contains(">64</text>"));
        // y axis reaches the whisker top
        assert!(svg.contains(">100</text>"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn a_scatter_draws_markers_without_a_line() {
        let s = Series {
            name: "s".into(),
            markers: true,
            scatter: true,
            points: (0..3)
                .map(|i| Point {
                    x: f64::from(i),
                    y: 1.0,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let svg = chart(vec![s]).render();
        assert!(!svg.contains("<polyline"));
        assert_eq!(svg.matches("<circle").count(), 3);
    }

    #[test]
    fn empty_chart_says_no_data() {
        let svg = chart(vec![]).render();
        assert!(svg.contains("no data"));
    }
}
