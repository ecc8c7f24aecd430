//! The small template matcher the pattern tables use (no regex engine): literal
//! text with typed holes, matched anywhere in a message.
//!
//! Holes: `{f}` a decimal number (`12`, `12.05`; not `12.`), `{n}` an integer with
//! optional thousands commas (`468,752`), `{s}` a run of non-blank characters, `{*}`
//! any text (the shortest that lets the rest match; all of it at the end). A template
//! starts with literal text. Work per match is bounded ([`MAX_TRIES`] retries).

/// A typed capture.
#[derive(Debug, Clone, PartialEq)]
pub enum Cap<'a> {
    Num(f64),
    Text(&'a str),
}

impl Cap<'_> {
    pub fn num(&self) -> Option<f64> {
        match self {
            Cap::Num(v) => Some(*v),
            Cap::Text(_) => None,
        }
    }
}

enum Seg<'t> {
    Lit(&'t str),
    Float,
    Int,
    Word,
    Any,
}

fn segments(t: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        let hole = ["{f}", "{n}", "{s}", "{*}"]
            .iter()
            .filter_map(|h| rest.find(h).map(|i| (i, *h)))
            .min_by_key(|(i, _)| *i);
        match hole {
            Some((i, h)) => {
                if i > 0 {
                    out.push(Seg::Lit(&rest[..i]));
                }
                out.push(match h {
                    "{f}" => Seg::Float,
                    "{n}" => Seg::Int,
                    "{s}" => Seg::Word,
                    _ => Seg::Any,
                });
                rest = &rest[i + 3..];
            }
            None => {
                out.push(Seg::Lit(rest));
                rest = "";
            }
        }
    }
    out
}

/// Length of a decimal number at the start of `s` (`12`, `12.5`; not `12.`).
fn float_len(s: &[u8]) -> usize {
    let int = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if int == 0 {
        return 0;
    }
    if s.get(int) == Some(&b'.') {
        let frac = s[int + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if frac > 0 {
            return int + 1 + frac;
        }
    }
    int
}

fn int_len(s: &[u8]) -> usize {
    let mut n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return 0;
    }
    while s.get(n) == Some(&b',')
        && s[n + 1..].iter().take_while(|b| b.is_ascii_digit()).count() == 3
    {
        n += 4;
    }
    n
}

/// Upper bound on `{*}` retries per match, so no input can make matching quadratic
/// beyond this factor.
const MAX_TRIES: usize = 64;

fn match_at<'a>(
    segs: &[Seg<'_>],
    text: &'a str,
    caps: &mut Vec<Cap<'a>>,
    tries: &mut usize,
) -> bool {
    let Some((seg, rest)) = segs.split_first() else {
        return true;
    };
    let bytes = text.as_bytes();
    match seg {
        Seg::Lit(l) => text.starts_with(l) && match_at(rest, &text[l.len()..], caps, tries),
        Seg::Float | Seg::Int => {
            let n = if matches!(seg, Seg::Float) {
                float_len(bytes)
            } else {
                int_len(bytes)
            };
            if n == 0 {
                return false;
            }
            let Ok(v) = text[..n].replace(',', "").parse::<f64>() else {
                return false;
            };
            caps.push(Cap::Num(v));
            match_at(rest, &text[n..], caps, tries) || {
                caps.pop();
                false
            }
        }
        Seg::Word => {
            let n = text
                .char_indices()
                .find(|(_, c)| c.is_whitespace())
                .map_or(text.len(), |(i, _)| i);
            // The longest word after which the rest matches (a word may end in the
            // next literal, e.g. `{s}:`); only ends where that literal starts are tried.
            let next_lit = match rest.first() {
                Some(Seg::Lit(l)) => Some(*l),
                _ => None,
            };
            for end in (1..=n).rev() {
                if !text.is_char_boundary(end)
                    || next_lit.is_some_and(|l| !text[end..].starts_with(l))
                {
                    continue;
                }
                *tries += 1;
                if *tries > MAX_TRIES {
                    return false;
                }
                caps.push(Cap::Text(&text[..end]));
                if match_at(rest, &text[end..], caps, tries) {
                    return true;
                }
                caps.pop();
            }
            false
        }
        Seg::Any if rest.is_empty() => {
            caps.push(Cap::Text(text));
            true
        }
        Seg::Any => {
            let mut from = 0;
            loop {
                *tries += 1;
                if *tries > MAX_TRIES {
                    return false;
                }
                let next = match rest.first() {
                    Some(Seg::Lit(l)) => match text[from..].find(l) {
                        Some(i) => from + i,
                        None => return false,
                    },
                    _ => from,
                };
                caps.push(Cap::Text(&text[..next]));
                if match_at(rest, &text[next..], caps, tries) {
                    return true;
                }
                caps.pop();
                match text[next..].chars().next() {
                    Some(c) => from = next + c.len_utf8(),
                    None => return false,
                }
            }
        }
    }
}

/// Matches `template` anywhere in `text`; returns the captures.
pub fn find<'a>(template: &str, text: &'a str) -> Option<Vec<Cap<'a>>> {
    let segs = segments(template);
    let Some(Seg::Lit(first)) = segs.first() else {
        return None;
    };
    let mut from = 0;
    let mut tries = 0;
    while let Some(i) = text[from..].find(first) {
        let at = from + i;
        let mut caps = Vec::new();
        if match_at(&segs, &text[at..], &mut caps, &mut tries) {
            return Some(caps);
        }
        from = at + first.len();
        if tries > MAX_TRIES {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_templates() {
        let c = find(
            "Model loading took {f} GiB and {f} seconds",
            "x Model loading took 32.8601 GiB and 212.733378 seconds",
        )
        .unwrap();
        assert_eq!(c, vec![Cap::Num(32.8601), Cap::Num(212.733378)]);
        let c = find(
            "KV cache size: {n} tokens",
            "GPU KV cache size: 468,752 tokens",
        )
        .unwrap();
        assert_eq!(c, vec![Cap::Num(468752.0)]);
        let c = find(
            "Time spent downloading weights for {s}: {f} seconds",
            "Time spent downloading weights for a/b: 1.5 seconds",
        )
        .unwrap();
        assert_eq!(c, vec![Cap::Text("a/b"), Cap::Num(1.5)]);
        let c = find(
            "Compiling a graph for compile range {*} takes {f} s",
            "Compiling a graph for compile range (1, 8000) takes 2219.43 s",
        )
        .unwrap();
        assert_eq!(c[1], Cap::Num(2219.43));
        assert!(find(
            "Loading weights took {f} seconds",
            "Loading weights took 21"
        )
        .is_none());
        assert!(find(
            "Loading weights took {f} seconds",
            "Loading weights took 21. seconds"
        )
        .is_none());
        assert!(find("Dynamo bytecode transform time: {f} s", "").is_none());
    }
}
