//! The `startup compare` HTML page: the stacked-bar chart ([`super::chart`]), then
//! one table per model of a [`Comparison`].

use std::fmt::Write;
use std::path::Path;

use super::chart::stacked_svg;
use crate::analysis::startup::compare::Comparison;
use crate::analysis::startup::StartupError;
use crate::report::frame;
use crate::report::svg::escape;

/// The page's own rules (after the shared frame's).
const CSS: &str =
    "th,td{white-space:nowrap}p.n{color:var(--muted);font-size:13px;max-width:1000px}";

/// The whole page: chart, then one table per model. No script, no external resource.
pub fn render_html(c: &Comparison) -> String {
    let mut s = frame::open("servescope startup compare", CSS);
    s.push_str("<h1>Replica startup: where the time goes</h1>");
    s.push_str("<p class=n>Phases from the engine's own log lines (durations the engine printed where it printed one; boundaries it does not log are inferred from neighbouring lines). Unattributed: time between known phases that no line explains. Several logs with one label are trials: mean, with min–max; [k/n]: only k of the n trials have the phase. Bars are wall-clock spans and add up to first line → first request; the tables show the engine's own durations.</p>");
    s.push_str(&stacked_svg(c));
    let mut model: Option<&str> = None;
    for r in &c.rows {
        if model != Some(r.model.as_str()) {
            if model.is_some() {
                s.push_str("</table>");
            }
            model = Some(r.model.as_str());
            let _ = write!(
                s,
                "<h2>{} (seconds)</h2><table><tr><th class=l>config</th><th>n</th>",
                escape(&r.model)
            );
            for h in &c.columns {
                let _ = write!(s, "<th>{}</th>", escape(h));
            }
            s.push_str("<th class=l>logs</th></tr>");
        }
        let _ = write!(
            s,
            "<tr><td class=l>{}</td><td>{}</td>",
            escape(&r.label),
            r.logs.len()
        );
        for h in &c.columns {
            let cell = r
                .cells
                .get(h)
                .map_or("–".to_string(), |st| st.cell_of(r.logs.len()));
            let _ = write!(s, "<td>{}</td>", escape(&cell));
        }
        let _ = write!(s, "<td class=l>{}</td></tr>", escape(&r.logs.join(", ")));
    }
    if model.is_some() {
        s.push_str("</table>");
    }
    frame::close(&mut s);
    s
}

/// Writes [`render_html`] to `path`.
pub fn write_html(c: &Comparison, path: &Path) -> Result<(), StartupError> {
    std::fs::write(path, render_html(c)).map_err(|e| StartupError::Write {
        path: path.display().to_string(),
        source: e,
    })
}
