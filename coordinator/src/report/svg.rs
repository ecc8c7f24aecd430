//! SVG primitives: text escaping, linear and logarithmic scales, "nice" ticks and
//! number formatting. Everything is plain text; no dependency.

/// Escapes text for HTML/SVG content and attribute values (`& < > " '`). Control
/// characters that XML forbids become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// How a scale maps its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleKind {
    Linear,
    /// Logarithmic; the domain must be positive (values ≤ 0 are clamped).
    Log,
}

/// Maps a data domain `[d0, d1]` onto a pixel range `[r0, r1]` (r1 < r0 for a y axis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub kind: ScaleKind,
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

const TINY: f64 = 1e-12;

impl Scale {
    pub fn linear(domain: (f64, f64), range: (f64, f64)) -> Scale {
        Scale {
            kind: ScaleKind::Linear,
            d0: domain.0,
            d1: domain.1,
            r0: range.0,
            r1: range.1,
        }
    }

    pub fn log(domain: (f64, f64), range: (f64, f64)) -> Scale {
        Scale {
            kind: ScaleKind::Log,
            d0: domain.0.max(TINY),
            d1: domain.1.max(TINY),
            r0: range.0,
            r1: range.1,
        }
    }

    /// Pixel position of `v`; the middle of the range for a degenerate domain.
    pub fn map(&self, v: f64) -> f64 {
        let (a, b, x) = match self.kind {
            ScaleKind::Linear => (self.d0, self.d1, v),
            ScaleKind::Log => (self.d0.ln(), self.d1.ln(), v.max(TINY).ln()),
        };
        if (b - a).abs() < TINY || !x.is_finite() {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (x - a) / (b - a) * (self.r1 - self.r0)
    }
}

/// A round step (1, 2, 2.5 or 5 × 10^k) giving about `target` intervals over `span`.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Nice linear ticks covering `[lo, hi]`: returns the widened domain and the ticks
/// (first and last tick are the domain's ends). A degenerate range is widened.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> ((f64, f64), Vec<f64>) {
    let (lo, hi) = if !(lo.is_finite() && hi.is_finite()) {
        (0.0, 1.0)
    } else if hi > lo {
        (lo, hi)
    } else if lo == 0.0 {
        (0.0, 1.0)
    } else {
        let d = lo.abs() * 0.1;
        (lo - d, lo + d)
    };
    let step = nice_step(hi - lo, target);
    let start = (lo / step + 1e-9).floor() * step;
    let end = (hi / step - 1e-9).ceil() * step;
    let n = ((end - start) / step).round().max(1.0) as usize;
    let k0 = (start / step).round();
    let scale = 10f64.powi(decimals_for(step) as i32);
    let ticks: Vec<f64> = (0..=n)
        .map(|i| {
            // Snap float noise (0.30000000000000004) and -0.
            let t = ((k0 + i as f64) * step * scale).round() / scale;
            if t == 0.0 {
                0.0
            } else {
                t
            }
        })
        .collect();
    let domain = (ticks[0], ticks[ticks.len() - 1]);
    (domain, ticks)
}

/// Ticks 1, 2, 5 × 10^k inside `[lo, hi]` (both > 0).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let k0 = lo.log10().floor() as i32;
    let k1 = hi.log10().ceil() as i32;
    for k in k0..=k1 {
        for m in [1.0, 2.0, 5.0] {
            let t = m * 10f64.powi(k);
            if t >= lo * (1.0 - 1e-9) && t <= hi * (1.0 + 1e-9) {
                out.push(t);
            }
        }
    }
    out
}

/// Decimals needed to show multiples of `step` exactly (0–6).
pub fn decimals_for(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    (0..=6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6)
}

/// A tick label: `v` with the decimals its axis step needs; thousands as `k`
/// when the step is a multiple of 1000.
pub fn format_tick(v: f64, step: f64) -> String {
    if step >= 1000.0 && v.abs() >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        return format!("{}k", (v / 1000.0) as i64);
    }
    let s = format!("{:.*}", decimals_for(step), v);
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// A table value with about three significant digits (no exponent).
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    let d = if a >= 100.0 || a == 0.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.d$}")
}

/// Rough rendered width of `text` in px at `font_px` (sans-serif average).
pub fn text_width(text: &str, font_px: f64) -> f64 {
    text.chars().count() as f64 * font_px * 0.56
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script> it's"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; it&#39;s"
        );
        assert_eq!(escape("a\u{1}b\nc"), "a\u{fffd}b\nc");
        assert_eq!(escape("plain µs"), "plain µs");
    }

    #[test]
    fn linear_and_log_scales_map_ends_and_middle() {
        let s = Scale::linear((0.0, 100.0), (50.0, 250.0));
        assert_eq!(s.map(0.0), 50.0);
        assert_eq!(s.map(100.0), 250.0);
        assert_eq!(s.map(25.0), 100.0);
        // y axes run downwards
        let y = Scale::linear((0.0, 10.0), (300.0, 20.0));
        assert_eq!(y.map(10.0), 20.0);
        assert_eq!(y.map(5.0), 160.0);
        let l = Scale::log((1.0, 100.0), (0.0, 200.0));
        assert!((l.map(10.0) - 100.0).abs() < 1e-9);
        assert!((l.map(100.0) - 200.0).abs() < 1e-9);
        // degenerate domain and non-positive log input do not produce NaN
        assert_eq!(Scale::linear((3.0, 3.0), (0.0, 10.0)).map(3.0), 5.0);
        assert!(l.map(0.0).is_finite());
    }

    #[test]
    fn nice_ticks_cover_the_data() {
        let ((a, b), t) = linear_ticks(0.0, 937.0, 5);
        assert_eq!((a, b), (0.0, 1000.0));
        assert_eq!(t, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        let ((a, b), t) = linear_ticks(0.0, 0.3, 3);
        assert_eq!((a, b), (0.0, 0.3));
        assert_eq!(t, vec![0.0, 0.1, 0.2, 0.3]);
        let ((a, b), t) = linear_ticks(5.0, 5.0, 4);
        assert!(a < 5.0 && b > 5.0 && t.len() >= 2);
        let ((a, b), _) = linear_ticks(0.0, 0.0, 4);
        assert_eq!((a, b), (0.0, 1.0));
        assert_eq!(nice_step(10.0, 4), 2.5);
        assert_eq!(nice_step(0.0, 4), 1.0);
        assert_eq!(log_ticks(1.0, 64.0), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert!(log_ticks(0.0, 10.0).is_empty());
    }

    #[test]
    fn tick_and_value_formatting() {
        assert_eq!(format_tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(format_tick(2.5, 2.5), "2.5");
        assert_eq!(format_tick(400.0, 200.0), "400");
        assert_eq!(format_tick(12000.0, 2000.0), "12k");
        assert_eq!(format_tick(-0.0, 1.0), "0");
        assert_eq!(format_value(1234.56), "1235");
        assert_eq!(format_value(12.345), "12.3");
        assert_eq!(format_value(0.01234), "0.012");
        assert_eq!(format_value(f64::NAN), "–");
        assert!(text_width("abcd", 10.0) > 20.0);
    }
}
