//! Line lexing for the exposition parser ([`super::prom`]): a byte cursor over one
//! line, label sets with escapes, values, HELP text. Every slice is cut at an ASCII
//! byte, so never inside a UTF-8 character.
//!
//! Depends on std only (compiled into the fuzz target by path).

/// A position in one line.
pub(crate) struct Cursor<'a> {
    pub(crate) s: &'a str,
    pub(crate) i: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// Bytes while `f(byte, is_first)`; only ever stops at an ASCII byte.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8, bool) -> bool) -> &'a str {
        let start = self.i;
        while let Some(b) = self.peek() {
            if !f(b, self.i == start) {
                break;
            }
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// Skips blanks; with `required`, at least one must be there.
    pub(crate) fn spaces(&mut self, required: bool) -> Result<(), String> {
        let n = self.take_while(|b, _| b == b' ' || b == b'\t').len();
        if n == 0 && (required || !self.at_end()) {
            return Err("expected a space".into());
        }
        Ok(())
    }

    pub(crate) fn word(&mut self) -> &'a str {
        self.take_while(|b, _| b != b' ' && b != b'\t')
    }

    /// `{name="value",...}` (trailing comma allowed), values unescaped.
    pub(crate) fn labels(&mut self, max: usize) -> Result<Vec<(String, String)>, String> {
        self.i += 1; // '{'
        let mut out = Vec::new();
        loop {
            self.take_while(|b, _| b == b' ' || b == b'\t');
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(out);
            }
            let name = self.take_while(|b, first| {
                b == b'_' || b.is_ascii_alphabetic() || (!first && b.is_ascii_digit())
            });
            if name.is_empty() {
                return Err("bad label name".into());
            }
            self.take_while(|b, _| b == b' ' || b == b'\t');
            if self.peek() != Some(b'=') {
                return Err(format!("expected '=' after label {}", clip(name)));
            }
            self.i += 1;
            self.take_while(|b, _| b == b' ' || b == b'\t');
            if self.peek() != Some(b'"') {
                return Err(format!("label {} value not quoted", clip(name)));
            }
            self.i += 1;
            let value = self.quoted()?;
            if out.len() >= max {
                return Err(format!("more than {max} labels"));
            }
            out.push((name.to_string(), value));
            self.take_while(|b, _| b == b' ' || b == b'\t');
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err("expected ',' or '}' in labels".into()),
            }
        }
    }

    /// The rest of a quoted label value (after the opening quote), unescaped.
    pub(crate) fn quoted(&mut self) -> Result<String, String> {
        let mut v = String::new();
        let mut start = self.i;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    v.push_str(&self.s[start..self.i]);
                    self.i += 1;
                    return Ok(v);
                }
                b'\\' => {
                    v.push_str(&self.s[start..self.i]);
                    self.i += 1;
                    match self.peek() {
                        Some(b'n') => v.push('\n'),
                        Some(b'\\') => v.push('\\'),
                        Some(b'"') => v.push('"'),
                        _ => return Err("bad escape in label value".into()),
                    }
                    self.i += 1;
                    start = self.i;
                }
                _ => self.i += 1,
            }
        }
        Err("unterminated label value".into())
    }
}

pub(crate) fn is_name_byte(b: u8, first: bool) -> bool {
    b == b'_' || b == b':' || b.is_ascii_alphabetic() || (!first && b.is_ascii_digit())
}

pub(crate) fn is_metric_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().enumerate().all(|(i, b)| is_name_byte(b, i == 0))
}

/// A sample value: a float, `NaN`, `+Inf`, `-Inf` (any case).
pub(crate) fn parse_value(w: &str) -> Result<f64, String> {
    w.parse::<f64>()
        .map_err(|_| format!("bad value {}", clip(w)))
}

/// First word and the rest after one run of blanks.
pub(crate) fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

/// HELP text escapes: `\\`, `\n` (and OpenMetrics' `\"`).
pub(crate) fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// At most 60 bytes of `s` for an error message (on a char boundary).
pub(crate) fn clip(s: &str) -> &str {
    let mut end = s.len().min(60);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
