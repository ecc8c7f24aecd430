//! The frame every HTML page of servescope shares: the doctype, one head (charset,
//! viewport, title, stylesheet) and the closing tags. The stylesheet starts with the
//! shared rules, written on a set of CSS variables every page uses, and then a
//! page's own rules. Pages are self-contained: no script, no external resource.
//! Their charts come from the shared kit ([`super::chart`], [`super::svg`]).

use super::svg::escape;

/// The shared rules: colours and sizes as variables, then body, headings, tables,
/// inline SVG and the status classes.
pub const BASE_CSS: &str = "
:root{--font:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;--fg:#222;--bg:#fafafa;--muted:#555;--line:#ddd;--th:#f0f0f0;--bad:#b00020;--warn:#a60;--ok:#1b7f3b}
body{font-family:var(--font);margin:20px 24px;color:var(--fg);background:var(--bg)}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 10px}
table{border-collapse:collapse;font-size:12.5px;background:#fff;margin:8px 0}
th,td{border:1px solid var(--line);padding:3px 6px;text-align:right}
th{background:var(--th);font-weight:600}td.l,th.l{text-align:left}
svg{background:#fff;border:1px solid var(--line);border-radius:4px}
.bad{color:var(--bad)}.warning{color:var(--warn)}.ok{color:var(--ok)}
";

/// A page's start, up to and including `<body>`: `title` is escaped; `css` (the
/// page's own rules) follows the shared ones.
pub fn open(title: &str, css: &str) -> String {
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    s.push_str(&escape(title));
    s.push_str("</title><style>");
    s.push_str(BASE_CSS);
    s.push_str(css);
    s.push_str("</style></head><body>");
    s
}

/// A page's end.
pub fn close(s: &mut String) {
    s.push_str("</body></html>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_gets_the_same_head_and_its_own_rules() {
        let mut s = open("a & b", "p.x{color:var(--muted)}");
        close(&mut s);
        assert!(s.starts_with("<!DOCTYPE html>"));
        assert!(s.contains("<title>a &amp; b</title>"));
        assert!(s.contains(BASE_CSS) && s.contains("p.x{color:var(--muted)}</style>"));
        assert!(s.ends_with("</body></html>\n"));
    }
}
