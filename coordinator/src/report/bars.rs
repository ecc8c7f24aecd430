//! Horizontal bar charts in the kit's look (the same font, title, frame and tick
//! style as [`super::chart`]): stacked bars (one row per label, segments in order,
//! e.g. TTFT components) and span bars (segments placed at their start on a shared
//! axis, e.g. startup phases). Colours come from the caller; all text is escaped.

use std::fmt::Write;

use super::layout::FONT;
use super::svg::{escape, format_tick, format_value, linear_ticks, text_width};

/// One bar segment: name (tooltip and legend), start, length, colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub name: String,
    pub start: f64,
    pub len: f64,
    pub color: String,
}

/// One row of bars.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub segments: Vec<Segment>,
}

/// A row of segments stacked one after the other from 0: (label, [(name, length)]).
pub fn stacked_row(label: &str, parts: &[(String, f64)], color: impl Fn(&str) -> String) -> Row {
    let mut at = 0.0;
    let segments = parts
        .iter()
        .map(|(name, v)| {
            let len = v.max(0.0);
            let s = Segment {
                name: name.clone(),
                start: at,
                len,
                color: color(name),
            };
            at += len;
            s
        })
        .collect();
    Row {
        label: label.to_string(),
        segments,
    }
}

const ROW_H: f64 = 22.0;
const TOP: f64 = 34.0;
const PLOT_W: f64 = 620.0;

/// The bars as one `<svg>`: a title, one row per [`Row`], each row's length (sum
/// of its segments) written after it, an x axis in `unit` and a legend of the segment names.
pub fn render(title: &str, unit: &str, rows: &[Row]) -> String {
    let left = rows
        .iter()
        .map(|r| text_width(&r.label, FONT))
        .fold(90.0, f64::max)
        .min(260.0)
        + 14.0;
    let end = |r: &Row| {
        r.segments
            .iter()
            .map(|s| s.start + s.len)
            .fold(0.0, f64::max)
    };
    let hi = rows.iter().map(end).fold(0.0, f64::max).max(1e-9);
    let ((d0, d1), ticks) = linear_ticks(0.0, hi, 6);
    let step = ticks.get(1).zip(ticks.first()).map_or(1.0, |(b, a)| b - a);
    let x = |v: f64| left + (v - d0) / (d1 - d0).max(1e-12) * PLOT_W;
    let mut names: Vec<(&str, &str)> = Vec::new();
    for s in rows.iter().flat_map(|r| &r.segments) {
        if !names.iter().any(|(n, _)| *n == s.name) {
            names.push((&s.name, &s.color));
        }
    }
    let base = TOP + ROW_H * rows.len() as f64 + 4.0;
    let legend_rows = names.len().div_ceil(4).max(1);
    let (w, h) = (
        left + PLOT_W + 90.0,
        base + 44.0 + legend_rows as f64 * 18.0,
    );
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif" font-size="{FONT}"><rect width="{w:.0}" height="{h:.0}" fill="#fff"/><text x="{left:.1}" y="19" font-size="15" font-weight="600" fill="#222">{}</text>"##,
        escape(title)
    );
    for t in &ticks {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{TOP}" y2="{base:.1}" stroke="#eee"/><text x="{0:.1}" y="{1:.1}" text-anchor="middle" fill="#444">{2}</text>"##,
            x(*t),
            base + 16.0,
            escape(&format_tick(*t, step))
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW_H;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
            left - 6.0,
            y + 14.0,
            escape(&r.label)
        );
        for g in &r.segments {
            let _ = write!(
                s,
                r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{}" fill="{}"><title>{}: {} {unit}</title></rect>"##,
                x(g.start),
                (x(g.start + g.len) - x(g.start)).max(0.0),
                ROW_H - 4.0,
                escape(&g.color),
                escape(&g.name),
                escape(&format_value(g.len))
            );
        }
        // After the bar: its length (a stacked row's total, a span's duration).
        let total: f64 = r.segments.iter().map(|g| g.len).sum();
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#333">{} {}</text>"##,
            x(end(r)) + 4.0,
            y + 14.0,
            escape(&format_value(total)),
            escape(unit)
        );
    }
    let _ = write!(
        s,
        r##"<path d="M{left:.1} {TOP}V{base:.1}H{:.1}" fill="none" stroke="#444"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222">{}</text>"##,
        left + PLOT_W,
        left + PLOT_W / 2.0,
        base + 34.0,
        escape(unit)
    );
    for (i, (name, color)) in names.iter().enumerate() {
        let (lx, ly) = (
            left + (i % 4) as f64 * (PLOT_W / 4.0),
            base + 52.0 + (i / 4) as f64 * 18.0,
        );
        let _ = write!(
            s,
            r##"<g class="legend"><rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{ly:.1}" fill="#333">{}</text></g>"##,
            ly - 10.0,
            escape(color),
            lx + 16.0,
            escape(name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_rows_add_up_and_escape() {
        let row = stacked_row(
            "req <1>",
            &[("a".into(), 2.0), ("b".into(), 3.0), ("neg".into(), -1.0)],
            |n| {
                if n == "a" {
                    "#111".into()
                } else {
                    "#222".into()
                }
            },
        );
        assert_eq!(row.segments[1].start, 2.0);
        assert_eq!(row.segments[2].len, 0.0);
        let svg = render("T & t", "ms", &[row]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("req &lt;1&gt;") && svg.contains("T &amp; t"));
        assert!(svg.contains(">5.00 ms</text>"), "{svg}");
        assert_eq!(svg.matches("class=\"legend\"").count(), 3);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn span_rows_sit_at_their_start() {
        let rows = vec![Row {
            label: "load".into(),
            segments: vec![Segment {
                name: "model_load".into(),
                start: 10.0,
                len: 5.0,
                color: "#1f77b4".into(),
            }],
        }];
        let svg = render("startup", "s", &rows);
        assert!(svg.contains(">5.00 s</text>"), "{svg}");
        assert!(svg.contains("<title>model_load: 5.00 s</title>"), "{svg}");
    }
}
