//! The stacked-bar chart of `startup compare`: inline SVG, one horizontal bar per
//! configuration, phases stacked in startup order, a legend, and a whisker for the
//! min–max of the total over trials. Uses the report module's scale helpers.

use std::fmt::Write;

use crate::analysis::startup::compare::{stack_kinds, Comparison};
use crate::analysis::startup::PhaseKind;
use crate::report::chart::PALETTE;
use crate::report::svg::{escape, format_tick, linear_ticks, text_width};

pub fn color(k: PhaseKind) -> &'static str {
    let i = match k {
        PhaseKind::ActorStart => 0,
        PhaseKind::FixedInit => 1,
        PhaseKind::CompileCacheDownload => 2,
        PhaseKind::ModelLoad => 3,
        PhaseKind::InitEngine => 7,
        PhaseKind::TorchCompile => 4,
        PhaseKind::MemoryProfiling => 5,
        PhaseKind::KvCacheAllocation => 6,
        PhaseKind::CudaGraphCapture => 9,
        PhaseKind::Warmup => 8,
        _ => return "#c7c7c7",
    };
    PALETTE[i]
}

/// The stacked horizontal bars: one per row, phases stacked in startup order, the
/// min–max of the total as a whisker when a row has several trials.
pub fn stacked_svg(c: &Comparison) -> String {
    let font = 12.0;
    let labels: Vec<String> = c
        .rows
        .iter()
        .map(|r| format!("{} · {}", r.model, r.label))
        .collect();
    let left = labels
        .iter()
        .map(|l| text_width(l, font))
        .fold(80.0, f64::max)
        + 16.0;
    let (bar_h, gap, top, plot_w) = (22.0, 10.0, 34.0, 640.0);
    let hi = c
        .rows
        .iter()
        .filter_map(|r| r.stacked_total.map(|s| s.max))
        .fold(0.0, f64::max);
    let ((d0, d1), ticks) = linear_ticks(0.0, hi.max(1.0), 8);
    let step = ticks.get(1).zip(ticks.first()).map_or(1.0, |(b, a)| b - a);
    let x = |v: f64| left + (v - d0) / (d1 - d0).max(1e-9) * plot_w;
    let plot_h = c.rows.len() as f64 * (bar_h + gap);
    let kinds: Vec<PhaseKind> = stack_kinds()
        .into_iter()
        .filter(|k| c.rows.iter().any(|r| r.stack.iter().any(|(s, _)| s == k)))
        .collect();
    let legend_y = top + plot_h + 56.0;
    let per_row = 4usize;
    let legend_rows = kinds.len().div_ceil(per_row).max(1);
    let width = (left + plot_w + 60.0).max(left + per_row as f64 * 200.0);
    let height = legend_y + legend_rows as f64 * 18.0 + 10.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"{font}\">"
    );
    let _ = write!(s, "<text x=\"{left:.1}\" y=\"20\" font-size=\"14\" font-weight=\"600\">Replica startup: wall-clock seconds from the first log line (mean of trials; whisker: min–max)</text>");
    for t in &ticks {
        let xx = x(*t);
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" y1=\"{top:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#e5e5e5\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top + plot_h,
            top + plot_h + 16.0,
            escape(&format_tick(*t, step))
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">seconds</text>",
        left + plot_w / 2.0,
        top + plot_h + 32.0
    );
    for (i, (r, label)) in c.rows.iter().zip(&labels).enumerate() {
        let y = top + i as f64 * (bar_h + gap) + gap / 2.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + bar_h / 2.0 + 4.0,
            escape(label)
        );
        let mut acc = 0.0;
        for (k, v) in &r.stack {
            let (x0, x1) = (x(acc), x(acc + v));
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"0.5\"><title>{}: {:.1} s</title></rect>",
                (x1 - x0).max(0.0),
                color(*k),
                escape(k.label()),
                v
            );
            acc += v;
        }
        if let Some(t) = r.stacked_total {
            if t.n > 1 {
                let (a, b, ym) = (x(t.min), x(t.max), y + bar_h / 2.0);
                let _ = write!(s, "<path d=\"M{a:.1} {ym:.1}H{b:.1}M{a:.1} {:.1}V{:.1}M{b:.1} {:.1}V{:.1}\" stroke=\"#222\" fill=\"none\"/>", ym - 5.0, ym + 5.0, ym - 5.0, ym + 5.0);
            }
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{:.0}</text>",
                x(t.max) + 6.0,
                y + bar_h / 2.0 + 4.0,
                t.mean
            );
        }
    }
    for (i, k) in kinds.iter().enumerate() {
        let lx = left + (i % per_row) as f64 * 200.0;
        let ly = legend_y + (i / per_row) as f64 * 18.0;
        let _ = write!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
            ly - 10.0,
            color(*k),
            lx + 16.0,
            escape(k.label())
        );
    }
    s.push_str("</svg>");
    s
}
