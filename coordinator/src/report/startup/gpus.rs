//! The per-GPU cold starts side by side, as an HTML table.

use crate::analysis::startup::gpus::{side_by_side, slowest, GpuStartup};
use crate::report::svg::escape;

/// The side-by-side view as an HTML table.
pub fn side_by_side_html(gpus: &[GpuStartup]) -> String {
    let slow = slowest(gpus);
    let mut s = String::from("<h2>Per-GPU cold start (NVML)</h2><table><tr><th>phase</th>");
    for (i, g) in gpus.iter().enumerate() {
        let mark = if Some(i) == slow { " (slowest)" } else { "" };
        s.push_str(&format!(
            "<th>{} pid {}{mark}</th>",
            escape(&g.label()),
            g.pid
        ));
    }
    s.push_str("</tr>");
    for (k, cells) in side_by_side(gpus) {
        s.push_str(&format!("<tr><td>{}</td>", escape(k.label())));
        for c in cells {
            let v = c.map_or("–".into(), |(at, d)| format!("{at:+.2} s, {d:.2} s"));
            s.push_str(&format!("<td>{v}</td>"));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}
