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
            let hit =
                !fast.prefix.bytes.is_empty() && data.as_bytes().starts_with(&fast.prefix.bytes);
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
