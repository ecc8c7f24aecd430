use super::*;

fn decode_all(limits: SseLimits, pieces: &[&[u8]]) -> (Vec<Event>, Result<(), SseError>) {
    let mut dec = SseDecoder::new(limits);
    let mut out = Vec::new();
    for piece in pieces {
        if let Err(e) = dec.push(piece, &mut out) {
            return (out, Err(e));
        }
    }
    (out, dec.finish())
}

fn events(input: &[u8]) -> Vec<Event> {
    let (out, res) = decode_all(SseLimits::default(), &[input]);
    assert_eq!(res, Ok(()));
    out
}

fn data(input: &[u8]) -> Vec<String> {
    events(input).into_iter().map(|e| e.data).collect()
}

fn ev(data: &str) -> Event {
    Event {
        data: data.into(),
        ..Event::default()
    }
}

#[test]
fn data_lines_join_with_newline() {
    assert_eq!(data(b"data: a\ndata: b\n\ndata: c\n\n"), ["a\nb", "c"]);
    assert_eq!(data(b"data\n\ndata:\ndata:\n\n"), ["", "\n"]);
}

#[test]
fn one_leading_space_stripped_and_field_parsing() {
    assert_eq!(data(b"data:x\n\ndata:  x \n\n"), ["x", " x "]);
    assert_eq!(data(b"data: a:b: c\n\n"), ["a:b: c"]);
    // Unknown fields and case-mismatched names are ignored.
    assert_eq!(data(b"Data: no\nfoo: bar\ndata: yes\n\n"), ["yes"]);
}

#[test]
fn comments_are_ignored() {
    assert_eq!(
        data(b": ping\n\n:\ndata: x\n: mid\ndata: y\n\n: tail\n"),
        ["x\ny"]
    );
    // A comment may hold anything, invalid UTF-8 included.
    assert_eq!(data(b":\xff\xfe\ndata: z\n\n"), ["z"]);
}

#[test]
fn blank_line_without_data_dispatches_nothing() {
    assert!(events(b"\n\n\nevent: x\n\nid: 1\n\n").is_empty());
    // The event type was reset by that blank line; the id persists.
    let out = events(b"event: x\n\ndata: d\n\n");
    assert_eq!(out, [ev("d")]);
}

#[test]
fn event_id_and_retry_fields() {
    let out = events(b"event: add\nid: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\ndata: c\n\n");
    assert_eq!(out[0].event_type.as_deref(), Some("add"));
    assert_eq!(out[0].last_event_id.as_deref(), Some("7"));
    assert_eq!(out[1].event_type, None);
    assert_eq!(out[1].last_event_id.as_deref(), Some("7"));
    assert_eq!(out[2].last_event_id.as_deref(), Some(""));
    let mut dec = SseDecoder::default();
    let mut sink = Vec::new();
    dec.push(
        b"retry: 1500\nretry: 12x\nretry:\nretry: 99999999999999999999999\n",
        &mut sink,
    )
    .unwrap();
    assert_eq!(dec.retry_ms(), Some(1500));
    // An id holding NUL is ignored.
    let out = events(b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n");
    assert_eq!(out[1].last_event_id.as_deref(), Some("1"));
    let e = out[0].clone();
    assert_eq!(
        EventRef {
            event_type: None,
            data: &e.data,
            last_event_id: None
        }
        .event_type_or_default(),
        "message"
    );
}

#[test]
fn all_line_terminators() {
    let want = ["a\nb", "c"];
    assert_eq!(data(b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"), want);
    assert_eq!(data(b"data: a\rdata: b\r\rdata: c\r\r"), want);
    assert_eq!(data(b"data: a\rdata: b\n\r\ndata: c\n\r"), want);
}

#[test]
fn crlf_split_across_chunks() {
    // "\r" ends one chunk, "\n" starts the next: one terminator, not a blank line.
    let (out, res) = decode_all(
        SseLimits::default(),
        &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
    );
    assert_eq!(res, Ok(()));
    assert_eq!(out, [ev("a\nb")]);
    // An empty push between them changes nothing.
    let (out, _) = decode_all(SseLimits::default(), &[b"data: a\r", b"", b"\n\r\n"]);
    assert_eq!(out, [ev("a")]);
    // A lone "\r" at a chunk end followed by another line.
    let (out, _) = decode_all(SseLimits::default(), &[b"data: a\r", b"\r"]);
    assert_eq!(out, [ev("a")]);
}

#[test]
fn leading_bom_is_stripped_even_when_split() {
    assert_eq!(data(b"\xEF\xBB\xBFdata: x\n\n"), ["x"]);
    let (out, _) = decode_all(
        SseLimits::default(),
        &[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"],
    );
    assert_eq!(out, [ev("x")]);
    // Only at the start of the stream.
    assert!(matches!(
        decode_all(
            SseLimits::default(),
            &[b"data: x\n\n\xEF\xBB\xBFdata: y\n\n"]
        )
        .0[..],
        [_]
    ));
}

#[test]
fn single_line_event_is_borrowed_from_input() {
    let input = b"data: {\"x\":1}\n\n";
    let mut dec = SseDecoder::default();
    let mut seen = 0;
    dec.push_with(input, |e| {
        let range = input.as_ptr_range();
        assert!(range.contains(&e.data.as_ptr()));
        seen += 1;
    })
    .unwrap();
    assert_eq!(seen, 1);
    assert!(dec.data.capacity() == 0, "nothing copied");
}

#[test]
fn every_split_offset_matches_whole_push() {
    let input: &[u8] =
            b"\xEF\xBB\xBF: hi\r\nevent: e\r\nid: 1\r\ndata: one\r\ndata: two\r\n\r\ndata:x\r\rdata: y\n\n: c\n";
    let whole = events(input);
    assert_eq!(whole.len(), 3);
    for i in 0..=input.len() {
        for j in i..=input.len() {
            let (out, res) = decode_all(
                SseLimits::default(),
                &[&input[..i], &input[i..j], &input[j..]],
            );
            assert_eq!(res, Ok(()), "split at {i},{j}");
            assert_eq!(out, whole, "split at {i},{j}");
        }
    }
    let pieces: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode_all(SseLimits::default(), &pieces).0, whole);
}

#[test]
fn events_larger_than_64k_work() {
    let payload = "x".repeat(200 * 1024);
    let input = format!("data: {payload}\n\n");
    assert_eq!(data(input.as_bytes()), std::slice::from_ref(&payload));
    // In 16 KiB reads, as from a socket.
    let pieces: Vec<&[u8]> = input.as_bytes().chunks(16 * 1024).collect();
    let (out, res) = decode_all(SseLimits::default(), &pieces);
    assert_eq!(res, Ok(()));
    assert_eq!(out[0].data.len(), payload.len());
    // As many 1 KiB data lines.
    let line = "y".repeat(1023);
    let multi: String = (0..200)
        .map(|_| format!("data: {line}\n"))
        .collect::<String>()
        + "\n";
    assert_eq!(data(multi.as_bytes())[0].len(), 200 * 1024 - 1);
}

#[test]
fn buffers_shrink_after_a_large_event() {
    let mut dec = SseDecoder::default();
    let big = format!("data: {}\n\n", "z".repeat(300 * 1024));
    for piece in big.as_bytes().chunks(1000) {
        dec.push_with(piece, |_| {}).unwrap();
    }
    assert!(dec.data.capacity() <= KEEP_CAPACITY);
    assert!(dec.line.capacity() <= KEEP_CAPACITY);
}

#[test]
fn event_size_limit() {
    let limits = SseLimits {
        max_event_bytes: 10,
        max_line_bytes: 100,
    };
    let (out, res) = decode_all(limits, &[b"data: 0123456789\n\n"]);
    assert_eq!((out.len(), res), (1, Ok(())));
    let (_, res) = decode_all(limits, &[b"data: 0123456789A\n\n"]);
    assert_eq!(res, Err(SseError::EventTooLarge { limit: 10 }));
    // Joined lines count, with their "\n".
    let (_, res) = decode_all(limits, &[b"data: 01234\ndata: 5678\n", b"\n"]);
    assert_eq!(res, Ok(()));
    let (_, res) = decode_all(limits, &[b"data: 01234\n", b"data: 56789\n\n"]);
    assert_eq!(res, Err(SseError::EventTooLarge { limit: 10 }));
    // The default is 1 MiB.
    let over = format!("data: {}\n\n", "a".repeat(DEFAULT_MAX_EVENT_BYTES + 1));
    let (_, res) = decode_all(SseLimits::default(), &[over.as_bytes()]);
    assert_eq!(res, Err(SseError::EventTooLarge { limit: 1 << 20 }));
    let at = format!("data: {}\n\n", "a".repeat(DEFAULT_MAX_EVENT_BYTES));
    assert_eq!(decode_all(SseLimits::default(), &[at.as_bytes()]).1, Ok(()));
}

#[test]
fn line_size_limit_even_without_terminator() {
    let limits = SseLimits {
        max_event_bytes: 100,
        max_line_bytes: 8,
    };
    assert_eq!(decode_all(limits, &[b": 345678\n"]).1, Ok(()));
    let (_, res) = decode_all(limits, &[b": 3456789\n"]);
    assert_eq!(res, Err(SseError::LineTooLarge { limit: 8 }));
    // A line that never ends is refused as soon as it is too long.
    let mut dec = SseDecoder::new(limits);
    let mut out = Vec::new();
    dec.push(b"data: 12", &mut out).unwrap();
    assert_eq!(
        dec.push(b"3", &mut out),
        Err(SseError::LineTooLarge { limit: 8 })
    );
}

#[test]
fn errors_are_sticky_and_keep_earlier_events() {
    let limits = SseLimits {
        max_event_bytes: 4,
        max_line_bytes: 64,
    };
    let mut dec = SseDecoder::new(limits);
    let mut out = Vec::new();
    let err = dec.push(b"data: ok\n\ndata: too long\n\ndata: x\n\n", &mut out);
    assert_eq!(err, Err(SseError::EventTooLarge { limit: 4 }));
    assert_eq!(out, [ev("ok")]);
    assert_eq!(dec.push(b"data: y\n\n", &mut out), err);
    assert_eq!(dec.finish(), err);
}

#[test]
fn invalid_utf8_is_an_error() {
    let (out, res) = decode_all(SseLimits::default(), &[b"data: a\n\ndata: ab\xff\n\n"]);
    assert_eq!(out.len(), 1);
    assert_eq!(
        res,
        Err(SseError::InvalidUtf8 {
            field: "data",
            valid_up_to: 2
        })
    );
    // Split inside a multi-byte character is fine.
    let (out, res) = decode_all(SseLimits::default(), &[b"data: \xC3", b"\xA9\n\n"]);
    assert_eq!((out, res), (vec![ev("\u{e9}")], Ok(())));
    let (_, res) = decode_all(SseLimits::default(), &[b"event: \xC3\ndata: x\n\n"]);
    assert!(matches!(
        res,
        Err(SseError::InvalidUtf8 { field: "event", .. })
    ));
    let (_, res) = decode_all(SseLimits::default(), &[b"id: \xC3\ndata: x\n\n"]);
    assert!(matches!(
        res,
        Err(SseError::InvalidUtf8 { field: "id", .. })
    ));
}

#[test]
fn finish_reports_a_cut_stream() {
    assert_eq!(
        decode_all(SseLimits::default(), &[b"data: a\n\n: ping\n"]).1,
        Ok(())
    );
    assert_eq!(
        decode_all(SseLimits::default(), &[b"data: a\n\r"]).1,
        Ok(())
    );
    assert_eq!(decode_all(SseLimits::default(), &[b""]).1, Ok(()));
    let (_, res) = decode_all(SseLimits::default(), &[b"data: a\n\ndata: {\"x\""]);
    assert_eq!(res, Err(SseError::StreamCut { pending_bytes: 10 }));
    let (_, res) = decode_all(SseLimits::default(), &[b"data: abc\n"]);
    assert_eq!(res, Err(SseError::StreamCut { pending_bytes: 3 }));
    let (_, res) = decode_all(SseLimits::default(), &[b"data: a\n\nevent: x\n"]);
    assert_eq!(res, Err(SseError::StreamCut { pending_bytes: 0 }));
    let (_, res) = decode_all(SseLimits::default(), &[b": partial comment"]);
    assert!(matches!(res, Err(SseError::StreamCut { .. })));
}

/// xorshift64*: deterministic, no dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_never_panic_and_splits_do_not_matter() {
    const ALPHABET: &[&[u8]] = &[
        b"data:",
        b"data: ",
        b"event:",
        b"id:",
        b"retry:",
        b":",
        b" ",
        b"\n",
        b"\r",
        b"\r\n",
        b"x",
        b"{}",
        b"\xff",
        b"\xC3",
        b"\xA9",
        b"\xEF\xBB\xBF",
        b"\0",
        b"12",
    ];
    let mut rng = Rng::new(0x5eed);
    for round in 0..3000 {
        let mut input = Vec::new();
        for _ in 0..rng.below(60) {
            if rng.below(4) == 0 {
                input.push(rng.next() as u8);
            } else {
                input.extend_from_slice(ALPHABET[rng.below(ALPHABET.len())]);
            }
        }
        let limits = if round % 2 == 0 {
            SseLimits::default()
        } else {
            SseLimits {
                max_event_bytes: rng.below(24),
                max_line_bytes: rng.below(32),
            }
        };
        let whole = decode_all(limits, &[&input]);
        let mut pieces = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let (a, b) = rest.split_at(rng.below(rest.len() + 1));
            pieces.push(a);
            rest = b;
        }
        assert_eq!(
            decode_all(limits, &pieces),
            whole,
            "input {input:?} pieces {pieces:?}"
        );
        for e in &whole.0 {
            assert!(e.data.len() <= limits.max_event_bytes);
        }
    }
}
