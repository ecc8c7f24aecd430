//! Findings as every page shows them: one card per finding (title, rule id and
//! severity, the evidence lines, the fix), worst first. All text is escaped.

use std::fmt::Write;

use super::svg::escape;
use crate::analysis::pd::attribution::{Finding, Severity};

/// The findings' rules (after the shared frame's).
pub const CSS: &str = "
.finding{background:#fff;border:1px solid var(--line);border-left:5px solid var(--warn);border-radius:4px;padding:6px 12px;margin:8px 0;max-width:1100px}
.finding.f-critical{border-left-color:var(--bad)}
.finding h3{font-size:15px;margin:4px 0}.finding small{color:var(--muted);font-weight:400}
.finding ul{margin:4px 0;padding-left:20px;font-size:13px}.finding p{margin:4px 0;font-size:13px}
";

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The cards, critical ones first; a sentence when there is none.
pub fn render(findings: &[Finding]) -> String {
    let mut h = String::new();
    if findings.is_empty() {
        h.push_str("<p>No finding: nothing in this run trips a diagnosis rule.</p>");
        return h;
    }
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in sorted {
        let sev = severity(f.severity);
        let _ = write!(
            h,
            "<div class=\"finding f-{sev}\"><h3 class={sev}>{} <small>({}, {sev})</small></h3><ul>",
            escape(&f.title),
            escape(f.rule)
        );
        for e in &f.evidence {
            let _ = write!(h, "<li>{}</li>", escape(e));
        }
        let _ = write!(h, "</ul><p><b>Fix:</b> {}</p></div>", escape(&f.fix));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rule: &'static str, severity: Severity) -> Finding {
        Finding {
            rule,
            severity,
            title: format!("{rule} <x>"),
            evidence: vec!["a & b".into()],
            fix: "do it".into(),
        }
    }

    #[test]
    fn critical_first_and_escaped() {
        let h = render(&[f("w", Severity::Warning), f("c", Severity::Critical)]);
        assert!(h.find("c &lt;x&gt;").unwrap() < h.find("w &lt;x&gt;").unwrap());
        assert!(h.contains("<li>a &amp; b</li>") && h.contains("<b>Fix:</b> do it"));
        assert_eq!(h.matches("<div").count(), h.matches("</div>").count());
        assert!(render(&[]).contains("No finding"));
    }
}
