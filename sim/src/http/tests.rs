use super::*;

#[test]
fn token_events_are_the_json_a_value_would_give() {
    for chat in [false, true] {
        let mut out = Vec::new();
        let prefix = event_prefix("cmpl-\"x\"", "text_completion", 7, "m\\");
        token_event(&mut out, &prefix, chat, " a\nb");
        let s = String::from_utf8(out).unwrap();
        let body = s
            .strip_prefix("data: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        let got: Value = serde_json::from_str(body).unwrap();
        let choice = if chat {
            json!({"index": 0, "delta": {"content": " a\nb"}, "logprobs": null, "finish_reason": null})
        } else {
            json!({"index": 0, "text": " a\nb", "logprobs": null, "finish_reason": null, "stop_reason": null})
        };
        let want = json!({"id": "cmpl-\"x\"", "object": "text_completion", "created": 7, "model": "m\\", "choices": [choice]});
        assert_eq!(got, want);
    }
}

#[test]
fn parse_errors_are_clear() {
    assert!(parse(b"{", false).unwrap_err().contains("not valid JSON"));
    assert!(parse(b"{}", false).unwrap_err().contains("prompt"));
    assert!(parse(br#"{"prompt":"a","max_tokens":0}"#, false)
        .unwrap_err()
        .contains("at least 1"));
    assert!(parse(br#"{"prompt":"a","max_tokens":-3}"#, false)
        .unwrap_err()
        .contains("positive"));
    assert!(parse(br#"{"messages":5}"#, true)
        .unwrap_err()
        .contains("messages"));
    let p = parse(br#"{"prompt":[1,2,3],"max_tokens":7,"stream":true,"stream_options":{"include_usage":true}}"#, false).unwrap();
    assert_eq!(
        (
            text::count_tokens(&p.prompt),
            p.max_tokens,
            p.stream,
            p.include_usage
        ),
        (3, Some(7), true, true)
    );
    let p = parse(
        br#"{"messages":[{"role":"user","content":"one two"}],"max_completion_tokens":2}"#,
        true,
    )
    .unwrap();
    assert_eq!((text::count_tokens(&p.prompt), p.max_tokens), (2, Some(2)));
}
