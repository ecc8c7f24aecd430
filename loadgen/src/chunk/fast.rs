//! A hand scanner for the common shape of a streaming chunk, tried before serde.
//!
//! At hundreds of thousands of chunks a second the generic path (serde_json into
//! [`RawChunk`]) is most of the client's CPU. Nearly every chunk vLLM (or the sim)
//! sends is one object whose keys we either want as plain strings/nulls or skip as
//! scalars. [`scan`] reads exactly that subset and answers `None` for anything else —
//! escapes in a string, a nested value under a key we skip, a non-null `usage`,
//! `metrics`, `error`, `token_ids` or `logprobs`, a duplicated key, anything not JSON
//! — so that serde decides. The contract, checked by the tests below and by the
//! `chunk` fuzz target: whenever `scan` answers `Some(raw)`, serde would have
//! produced the same `raw` from the same text.

use std::borrow::Cow;

use super::{Choices, Chunk, RawChoice, RawDelta, Str};

/// The chunk, when `data` has the simple shape; `None`: use serde.
pub(super) fn scan(data: &str) -> Option<Chunk<'_>> {
    scan_with(data, None)
}

/// What a stream's last fast-scanned chunk held before the value of its `choices`:
/// those bytes and the scan state after them. Consecutive chunks of one stream
/// usually share that prefix (`id`, `object`, `created`, `model`), so a chunk that
/// starts with the same bytes resumes there: the scanner is deterministic and reads
/// nothing past the prefix to get there, so the state is the one a full scan would
/// reach.
#[derive(Debug, Clone, Default)]
pub(super) struct Prefix {
    bytes: Vec<u8>,
    seen: [bool; 8],
}

/// Longest prefix kept; longer ones are not cached.
const MAX_PREFIX: usize = 512;

/// [`scan`], resuming from and updating a stream's [`Prefix`] when given one.
pub(super) fn scan_with<'a>(data: &'a str, prefix: Option<&mut Prefix>) -> Option<Chunk<'a>> {
    let mut p = Scanner {
        s: data,
        b: data.as_bytes(),
        i: 0,
    };
    let raw = match prefix {
        Some(pre) if !pre.bytes.is_empty() && p.b.starts_with(&pre.bytes) => {
            p.i = pre.bytes.len();
            p.chunk(Some(pre.seen), None)?
        }
        Some(pre) => {
            pre.bytes.clear();
            p.ws();
            p.chunk(None, Some(pre))?
        }
        None => {
            p.ws();
            p.chunk(None, None)?
        }
    };
    p.ws();
    if p.i != p.b.len() {
        return None;
    }
    match raw? {
        c if c.count > 0 => Some(Chunk::Token(c.into_token(None, None))),
        _ => Some(Chunk::Empty),
    }
}

struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// A key already seen: serde rejects duplicated fields, so we leave them to it.
fn first(seen: &mut bool) -> Option<()> {
    if *seen {
        return None;
    }
    *seen = true;
    Some(())
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.b.get(start..)?;
        let n = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[n] != b'"' {
            return None;
        }
        self.i = start + n + 1;
        // Both ends are ASCII quotes, hence char boundaries.
        self.s.get(start..start + n)
    }

    /// `null` → `Some(None)`, a plain string → `Some(Some(s))`.
    fn opt_str(&mut self) -> Option<Option<Str<'a>>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        Some(Some(Str(Cow::Borrowed(self.string()?))))
    }

    /// A string field seen for the first time: `null` or a plain string into `slot`.
    fn str_field(&mut self, seen: &mut bool, slot: &mut Option<Str<'a>>) -> Option<()> {
        first(seen)?;
        *slot = self.opt_str()?;
        Some(())
    }

    fn null(&mut self) -> Option<()> {
        self.literal(b"null")
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number as JSON's grammar has it: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            (self.digits() > 0).then_some(())?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        Some(())
    }

    /// A scalar under a key we do not keep; objects and arrays are left to serde.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            _ => self.number(),
        }
    }

    /// `{ "key": value, ... }`, calling `field` with the scanner on each value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            field(self, key)?;
            if !self.next_item(b'}')? {
                return Some(());
            }
        }
    }

    /// After an item of an object or array: `,` → `Some(true)` (another follows),
    /// `close` → `Some(false)` (done), anything else → `None`.
    fn next_item(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        if c == b',' {
            self.ws();
            Some(true)
        } else {
            (c == close).then_some(false)
        }
    }

    /// The top-level object: its `choices` (`Some(None)`: null or absent). `resume`:
    /// the scan state right before the value of `choices` (the bytes before it were a
    /// cached [`Prefix`]). `record`: where to keep this chunk's prefix.
    fn chunk(
        &mut self,
        resume: Option<[bool; 8]>,
        mut record: Option<&mut Prefix>,
    ) -> Option<Option<Choices<'a>>> {
        let mut choices = None;
        let mut seen = [false; 8];
        let mut pending = None;
        if let Some(state) = resume {
            seen = state;
            pending = Some("choices");
            self.ws();
        } else {
            self.eat(b'{')?;
            self.ws();
            if self.eat(b'}').is_some() {
                return Some(None);
            }
        }
        loop {
            let key = match pending.take() {
                Some(k) => k,
                None => {
                    let key = self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    key
                }
            };
            match key {
                // An error object is serde's (so never part of a cached prefix).
                "object" => {
                    first(&mut seen[0])?;
                    if self.opt_str()?.is_some_and(|o| o.0 == "error") {
                        return None;
                    }
                }
                "choices" => {
                    if let Some(pre) = record.take() {
                        if self.i <= MAX_PREFIX {
                            pre.bytes.extend_from_slice(&self.b[..self.i]);
                            pre.seen = seen;
                        }
                    }
                    first(&mut seen[1])?;
                    if self.peek()? == b'n' {
                        self.null()?;
                    } else {
                        choices = Some(self.choices()?);
                    }
                }
                // Only their absence (null) is read here; values go to serde.
                "usage" => first(&mut seen[2]).and_then(|()| self.null())?,
                "metrics" => first(&mut seen[3]).and_then(|()| self.null())?,
                "error" => first(&mut seen[4]).and_then(|()| self.null())?,
                "message" => first(&mut seen[5]).and_then(|()| self.null())?,
                "type" => first(&mut seen[6]).and_then(|()| self.null())?,
                "code" => first(&mut seen[7]).and_then(|()| self.null())?,
                _ => self.skip_scalar()?,
            }
            if !self.next_item(b'}')? {
                return Some(choices);
            }
        }
    }

    fn choices(&mut self) -> Option<Choices<'a>> {
        let mut acc = Choices::default();
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(acc);
        }
        loop {
            acc.add(self.choice()?);
            if !self.next_item(b']')? {
                return Some(acc);
            }
        }
    }

    fn choice(&mut self) -> Option<RawChoice<'a>> {
        let mut c = RawChoice {
            text: None,
            delta: None,
            finish_reason: None,
            token_ids: None,
            logprobs: None,
        };
        let mut seen = [false; 5];
        self.object(|p, key| match key {
            "text" => p.str_field(&mut seen[0], &mut c.text),
            "delta" => {
                first(&mut seen[1])?;
                if p.peek()? == b'n' {
                    return p.null();
                }
                c.delta = Some(p.delta()?);
                Some(())
            }
            "finish_reason" => p.str_field(&mut seen[2], &mut c.finish_reason),
            "token_ids" => first(&mut seen[3]).and_then(|()| p.null()),
            "logprobs" => first(&mut seen[4]).and_then(|()| p.null()),
            _ => p.skip_scalar(),
        })?;
        Some(c)
    }

    fn delta(&mut self) -> Option<RawDelta<'a>> {
        let mut d = RawDelta {
            content: None,
            reasoning_content: None,
            reasoning: None,
            token_ids: None,
        };
        let mut seen = [false; 4];
        self.object(|p, key| match key {
            "content" => p.str_field(&mut seen[0], &mut d.content),
            "reasoning_content" => p.str_field(&mut seen[1], &mut d.reasoning_content),
            "reasoning" => p.str_field(&mut seen[2], &mut d.reasoning),
            "token_ids" => first(&mut seen[3]).and_then(|()| p.null()),
            _ => p.skip_scalar(),
        })?;
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_chunk, decode_chunk_serde};
    use super::scan;
    use crate::sse::tests::Rng;

    /// Both paths agree: the same chunk, or both an error.
    fn agree(data: &str) {
        match (decode_chunk(data), decode_chunk_serde(data)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{data}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("fast {a:?} vs serde {b:?} on {data}"),
        }
    }

    fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
        xs[rng.below(xs.len())]
    }

    /// Whitespace JSON allows (and some it does not, for the scanner to refuse).
    fn ws(rng: &mut Rng) -> &'static str {
        pick(rng, &["", "", "", " ", "\n", "\t ", "\r\n", "\u{b}"])
    }

    const STRINGS: &[&str] = &[
        r#""tok""#,
        r#""""#,
        r#"" wörld""#,
        r#""a\nb""#,
        r#""\u00e9\"""#,
        "\"raw\u{1}ctl\"",
        "null",
        "7",
        "[1]",
        "{}",
        "true",
    ];
    const SCALARS: &[&str] = &[
        "0",
        "-1",
        "1763903047",
        "1.5e3",
        "-0.25E-2",
        "01",
        "1.",
        "-",
        "1e",
        "true",
        "false",
        "null",
        "nul",
        r#""x""#,
        r#""e\"s""#,
        "[]",
        "{}",
        r#"{"a":[1,{"b":null}]}"#,
    ];

    fn object(rng: &mut Rng, fields: Vec<(String, String)>) -> String {
        let mut s = format!("{{{}", ws(rng));
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                s += &format!(",{}", ws(rng));
            }
            s += &format!("\"{k}\"{}:{}{v}{}", ws(rng), ws(rng), ws(rng));
        }
        s + "}"
    }

    fn delta(rng: &mut Rng) -> String {
        let mut f = Vec::new();
        for _ in 0..rng.below(4) {
            let k = pick(
                rng,
                &[
                    "content",
                    "reasoning_content",
                    "reasoning",
                    "role",
                    "token_ids",
                    "tool_calls",
                ],
            );
            let v = match k {
                "token_ids" => pick(rng, &["null", "[1,2]"]),
                "tool_calls" => pick(rng, &["null", "[]", r#"[{"id":"t"}]"#]),
                _ => pick(rng, STRINGS),
            };
            f.push((k.to_string(), v.to_string()));
        }
        object(rng, f)
    }

    fn choice(rng: &mut Rng) -> String {
        let mut f = Vec::new();
        for _ in 0..rng.below(6) {
            let k = pick(
                rng,
                &[
                    "index",
                    "text",
                    "delta",
                    "finish_reason",
                    "stop_reason",
                    "token_ids",
                    "logprobs",
                ],
            );
            let v = match k {
                "text" | "finish_reason" => pick(rng, STRINGS).to_string(),
                "delta" => match rng.below(4) {
                    0 => "null".to_string(),
                    1 => pick(rng, SCALARS).to_string(),
                    _ => delta(rng),
                },
                "token_ids" => pick(rng, &["null", "[1403,311]", "[]", "3"]).to_string(),
                "logprobs" => pick(
                    rng,
                    &["null", r#"{"tokens":["a","b"]}"#, r#"{"content":[{}]}"#],
                )
                .to_string(),
                _ => pick(rng, SCALARS).to_string(),
            };
            f.push((k.to_string(), v));
        }
        object(rng, f)
    }

    fn chunk(rng: &mut Rng) -> String {
        let mut f = Vec::new();
        for _ in 0..rng.below(8) {
            let k = pick(
                rng,
                &[
                    "id",
                    "object",
                    "created",
                    "model",
                    "choices",
                    "choices",
                    "usage",
                    "metrics",
                    "error",
                    "message",
                    "type",
                    "code",
                    "system_fingerprint",
                ],
            );
            let v = match k {
                "object" => pick(
                    rng,
                    &[
                        r#""text_completion""#,
                        r#""chat.completion.chunk""#,
                        r#""error""#,
                        "null",
                        "3",
                    ],
                )
                .to_string(),
                "choices" => match rng.below(5) {
                    0 => "null".to_string(),
                    1 => pick(rng, &["[]", "{}", "[null]", "[[]]", "[{},]"]).to_string(),
                    _ => {
                        let n = 1 + rng.below(3);
                        let cs: Vec<String> = (0..n).map(|_| choice(rng)).collect();
                        format!("[{}{}{}]", ws(rng), cs.join(","), ws(rng))
                    }
                },
                "usage" => pick(rng, &["null", r#"{"completion_tokens":3}"#, "[]"]).to_string(),
                "metrics" | "error" | "message" | "type" | "code" => pick(
                    rng,
                    &["null", r#""boom""#, r#"{"message":"m","code":400}"#, "4"],
                )
                .to_string(),
                _ => pick(rng, SCALARS).to_string(),
            };
            f.push((k.to_string(), v));
        }
        format!("{}{}{}", ws(rng), object(rng, f), ws(rng))
    }

    /// A chunk of the shape the scanner takes (keys in any order, any whitespace,
    /// extra scalar keys, several choices), for the mutations to start from.
    fn clean_chunk(rng: &mut Rng) -> String {
        const CLEAN: &[&str] = &[r#""tok""#, r#""""#, r#"" wörld""#, "null"];
        let mut choices = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let mut f = vec![(
                "index".to_string(),
                pick(rng, &["0", "1", "12"]).to_string(),
            )];
            if rng.below(2) == 0 {
                f.push(("text".into(), pick(rng, CLEAN).into()));
            } else {
                let mut d = Vec::new();
                for k in ["role", "content", "reasoning_content", "reasoning"] {
                    if rng.below(2) == 0 {
                        d.push((k.to_string(), pick(rng, CLEAN).to_string()));
                    }
                }
                f.push(("delta".into(), object(rng, d)));
            }
            for (k, v) in [
                ("logprobs", "null"),
                (
                    "finish_reason",
                    pick(rng, &["null", r#""stop""#, r#""length""#]),
                ),
                ("stop_reason", pick(rng, &["null", "128009", r#""</s>""#])),
                ("token_ids", "null"),
            ] {
                if rng.below(2) == 0 {
                    f.push((k.into(), v.into()));
                }
            }
            let at = rng.below(f.len());
            f.rotate_left(at);
            choices.push(object(rng, f));
        }
        let mut f = vec![
            ("id".to_string(), r#""cmpl-1""#.to_string()),
            (
                "object".into(),
                pick(rng, &[r#""text_completion""#, r#""chat.completion.chunk""#]).into(),
            ),
            ("created".into(), pick(rng, SCALARS[..5].as_ref()).into()),
            ("model".into(), r#""m""#.into()),
            ("choices".into(), format!("[{}]", choices.join(","))),
        ];
        for k in ["usage", "metrics", "system_fingerprint"] {
            if rng.below(3) == 0 {
                f.push((k.into(), "null".into()));
            }
        }
        let at = rng.below(f.len());
        f.rotate_left(at);
        // JSON whitespace only (no vertical tab).
        format!("{}{}{}", ws(rng), object(rng, f), ws(rng)).replace('\u{b}', " ")
    }

    #[test]
    fn scanner_agrees_with_serde_on_generated_chunks() {
        let mut rng = Rng::new(0xc4a7);
        let (mut fast, mut total) = (0, 0);
        for round in 0..30_000 {
            let c = if round % 2 == 0 {
                clean_chunk(&mut rng)
            } else {
                chunk(&mut rng)
            };
            fast += usize::from(scan(&c).is_some());
            total += 1;
            agree(&c);
            // And a mutated copy: a byte replaced, dropped or a JSON character inserted.
            let mut b = c.into_bytes();
            for _ in 0..1 + rng.below(3) {
                if b.is_empty() {
                    break;
                }
                let at = rng.below(b.len());
                const EDITS: &[u8] = b"{}[]\":,\\ 0e-.nt";
                match rng.below(3) {
                    0 => b[at] = EDITS[rng.below(EDITS.len())],
                    1 => {
                        b.remove(at);
                    }
                    _ => b.insert(at, EDITS[rng.below(EDITS.len())]),
                }
            }
            if let Ok(s) = String::from_utf8(b) {
                fast += usize::from(scan(&s).is_some());
                total += 1;
                agree(&s);
            }
        }
        // The generator must reach the scanner's accepting paths, not only its refusals.
        assert!(fast * 5 > total, "scanner accepted only {fast} of {total}");
    }

    /// Streams whose chunks share a prefix (as a server's do), sometimes changed or
    /// mutated: the per-stream decoder with its prefix cache agrees with serde alone,
    /// event by event.
    #[test]
    fn prefix_cache_agrees_with_serde_on_streams() {
        use super::super::ChunkDecoder;
        let mut rng = Rng::new(0x57ea);
        let mut resumed = 0;
        for _ in 0..3000 {
            let (mut fast, mut slow) = (ChunkDecoder::new(), ChunkDecoder::serde_only());
            let mut head = clean_chunk(&mut rng);
            for _ in 0..1 + rng.below(12) {
                if rng.below(5) == 0 {
                    head = if rng.below(2) == 0 {
                        clean_chunk(&mut rng)
                    } else {
                        chunk(&mut rng)
                    };
                }
                // The head's fields, then fresh choices and a tail: the head's bytes up
                // to its own choices are the shared prefix.
                let body = head.trim_end().trim_end_matches('}');
                let cut = body.find(r#""choices""#).map_or(body.len(), |i| i);
                let mut data = format!(
                    "{}\"choices\":[{}]{}}}",
                    &body[..cut],
                    choice(&mut rng),
                    pick(
                        &mut rng,
                        &[
                            "",
                            r#","usage":null"#,
                            r#","usage":{"completion_tokens":2}"#
                        ]
                    )
                );
                if rng.below(6) == 0 {
                    let mut b = data.into_bytes();
                    let at = rng.below(b.len());
                    const EDITS: &[u8] = b"{}[]\":, \\";
                    b[at] = EDITS[rng.below(EDITS.len())];
                    data = String::from_utf8(b).unwrap_or_default();
                }
                let hit = !fast.prefix.bytes.is_empty()
                    && data.as_bytes().starts_with(&fast.prefix.bytes);
                match (fast.decode(&data), slow.decode(&data)) {
                    (Ok(a), Ok(b)) => {
                        resumed += usize::from(hit);
                        assert_eq!(a, b, "{data}");
                    }
                    (Err(_), Err(_)) => {}
                    (a, b) => panic!("cached {a:?} vs serde {b:?} on {data}"),
                }
            }
        }
        assert!(resumed > 1000, "the cache was used only {resumed} times");
    }

    #[test]
    fn the_common_shapes_take_the_fast_path() {
        let id = r#""id":"cmpl-9a1f","object":"text_completion","created":1763903047,"model":"m""#;
        for data in [
            format!(r#"{{{id},"choices":[{{"index":0,"text":" Hello","logprobs":null,"finish_reason":null,"stop_reason":null}}],"usage":null}}"#),
            format!(r#"{{{id},"choices":[{{"index":0,"text":"!","logprobs":null,"finish_reason":"length","stop_reason":null}}]}}"#),
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#.to_string(),
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"Think"},"logprobs":null,"finish_reason":null}]}"#.to_string(),
        ] {
            assert!(scan(&data).is_some(), "{data}");
            agree(&data);
        }
        // Left to serde: escapes, usage, token ids.
        for data in [
            r#"{"choices":[{"text":"a\nb"}]}"#,
            r#"{"choices":[],"usage":{"completion_tokens":3}}"#,
            r#"{"choices":[{"text":"a","token_ids":[1,2]}]}"#,
            r#"{"choices":[{"text":"a"}],"choices":[]}"#,
            r#"["x"]"#,
        ] {
            assert!(scan(data).is_none(), "{data}");
            agree(data);
        }
    }
}
