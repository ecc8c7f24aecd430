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
mod tests;
