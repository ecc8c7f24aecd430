//! The fabric matrix page: the N×N bandwidth heatmap of
//! [`Matrix`] on the shared page frame.

use crate::analysis::fabric::matrix::Matrix;
use crate::report::frame;
use crate::report::svg::escape;

/// A self-contained HTML page with the heatmap (GB/s, outliers outlined in red).
pub fn html(m: &Matrix, title: &str) -> String {
    let n = m.agents.len();
    let (cell, left, top) = (90.0, 180.0, 150.0);
    let w = left + cell * n as f64 + 20.0;
    let h = top + cell * n as f64 + 40.0;
    let max = m
        .cells
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif" font-size="12"><rect width="{w}" height="{h}" fill="#fff"/><text x="{left}" y="19" font-size="15" font-weight="600" fill="#222">bandwidth from → to (GB/s)</text>"##
    );
    for (i, a) in m.agents.iter().enumerate() {
        let y = top + cell * i as f64 + cell / 2.0;
        svg += &format!(
            r#"<text x="{}" y="{y}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            left - 6.0,
            escape(a)
        );
        let x = left + cell * i as f64 + cell / 2.0;
        svg += &format!(
            r#"<text x="{x}" y="{}" text-anchor="start" transform="rotate(-40 {x} {})">{}</text>"#,
            top - 8.0,
            top - 8.0,
            escape(a)
        );
    }
    for (i, row) in m.cells.iter().enumerate() {
        for (j, c) in row.iter().enumerate() {
            let (x, y) = (left + cell * j as f64, top + cell * i as f64);
            let (fill, label) = match c {
                None if i == j => ("#eeeeee".to_string(), String::new()),
                None => ("#ffffff".to_string(), "failed".to_string()),
                Some(v) => {
                    let t = (v / max).clamp(0.0, 1.0);
                    let g = (255.0 - 150.0 * t) as u8;
                    (format!("rgb({},{},255)", g, g), format!("{:.2}", v / 1e9))
                }
            };
            let out = m.outliers.iter().any(|o| o.0 == i && o.1 == j);
            let stroke = if out {
                r##"stroke="#d00" stroke-width="3""##
            } else {
                r##"stroke="#999""##
            };
            svg += &format!(
                r#"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" {stroke}><title>{} → {}: {label} GB/s</title></rect>"#,
                escape(&m.agents[i]),
                escape(&m.agents[j])
            );
            svg += &format!(
                r#"<text x="{}" y="{}" text-anchor="middle" dominant-baseline="middle">{label}</text>"#,
                x + cell / 2.0,
                y + cell / 2.0
            );
        }
    }
    svg += &format!(
        r#"<text x="{left}" y="{}">rows: from (driver), columns: to (responder); GB/s (10⁹ B/s) at the largest size; red: &lt; 80 % of the median</text></svg>"#,
        h - 12.0
    );
    let median = m
        .median
        .map(|v| format!("{:.2} GB/s", v / 1e9))
        .unwrap_or_else(|| "n/a".into());
    let mut outl = String::new();
    for (i, j, v, f) in &m.outliers {
        outl += &format!(
            "<li>{} → {}: {:.2} GB/s ({:.0} % of median)</li>",
            escape(&m.agents[*i]),
            escape(&m.agents[*j]),
            v / 1e9,
            f * 100.0
        );
    }
    if outl.is_empty() {
        outl.push_str("<li>none</li>");
    }
    let mut page = frame::open(title, "");
    page += &format!(
        "<h1>{}</h1><p>median {median}</p>{svg}<h2>Outliers</h2><ul>{outl}</ul>",
        escape(title)
    );
    frame::close(&mut page);
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fabric::matrix::build;
    use crate::store::ProbeOutcome;
    use servescope_proto::v1::ProbeSizeResult;

    fn o(from: &str, to: &str, bps: f64) -> ProbeOutcome {
        ProbeOutcome {
            from: from.into(),
            to: to.into(),
            results: vec![ProbeSizeResult {
                size: 1 << 20,
                op: "tag".into(),
                bandwidth_bps: bps,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn slow_pair_is_flagged_and_drawn() {
        let a: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let outs = vec![
            o("a", "b", 10e9),
            o("b", "a", 10e9),
            o("a", "c", 10e9),
            o("c", "a", 10e9),
            o("b", "c", 10e9),
            o("c", "b", 4e9),
        ];
        let m = build(&a, &outs);
        assert_eq!(m.median, Some(10e9));
        assert_eq!(m.outliers.len(), 1);
        assert_eq!((m.outliers[0].0, m.outliers[0].1), (2, 1));
        let page = html(&m, "matrix <test>");
        assert!(page.contains("stroke=\"#d00\""));
        assert!(page.contains("c → b: 4.00 GB/s (40 % of median)"));
        assert!(page.contains("matrix &lt;test&gt;"));
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains(frame::BASE_CSS));
    }
}
