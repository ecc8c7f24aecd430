use super::*;

/// A NIXL 1.5.1 initiator's buffer as its `telemetry_reader` printed it: 20 + 3
/// warm-up WRITEs of 1 MiB (16 blocks), then 7 + 3 READs of 256 KiB.
const INITIATOR: &str = include_str!("../../tests/data/nixl_telemetry_initiator.txt");
/// The target of the same pair: only its registration.
const TARGET: &str = include_str!("../../tests/data/nixl_telemetry_target.txt");

#[test]
fn captured_initiator_buffer() {
    let out = parse(INITIATOR, false).expect("parse");
    assert_eq!(out.version, Some(4));
    assert_eq!(out.capacity, Some(4096));
    assert!(!out.partial_tail);
    let s = summarize(&out);
    assert_eq!(s.events, 133);
    assert_eq!(s.tx_requests, 23);
    assert_eq!(s.rx_requests, 10);
    assert_eq!(s.tx_bytes, 23 << 20);
    assert_eq!(s.rx_bytes, 10 << 18);
    assert_eq!(s.by_name["agent_memory_registered"].sum, 1 << 20);
    assert_eq!(s.by_name["agent_xfer_time"].count, 33);
    assert_eq!(s.by_name["agent_xfer_time"].sum, 74560);
    assert_eq!(s.xfer.count, 33);
    assert!((s.xfer.avg_us - 74560.0 / 33.0).abs() < 1e-9);
    assert_eq!(
        (s.xfer.p50_us, s.xfer.p99_us, s.xfer.max_us),
        (74, 34868, 34868)
    );
    assert_eq!(s.xfer.decades, [0, 24, 6, 0, 3, 0]);
    assert_eq!(s.post.count, 33);
    assert_eq!((s.post.p50_us, s.post.p99_us), (74, 20841));
    assert_eq!(s.post.decades, [0, 25, 6, 0, 2, 0]);
    assert!(s.errors.is_empty());
    assert_eq!(s.error_total(), 0);
    assert_eq!(s.dropped, 0);
}

#[test]
fn captured_target_buffer_and_an_empty_one() {
    let s = summarize(&parse(TARGET, false).expect("parse"));
    assert_eq!(s.events, 1);
    assert_eq!(s.xfer, Times::default());
    // Read a second time: NIXL's reader consumed the events.
    let empty = TARGET.split("\n\n=== NIXL").next().expect("header");
    let s = summarize(&parse(empty, false).expect("parse"));
    assert_eq!((s.events, s.version), (0, Some(4)));
}

const ERRORS: &str = "Successfully opened telemetry buffer (version: 4)
Buffer capacity: 4096 events

=== NIXL Telemetry Event ===
Timestamp: 2025-01-15 14:30:25.123456
Category: NIXL_TELEMETRY_ERROR
Event name: agent_err_remote_disconnect
Value: 1
===========================

=== NIXL Telemetry Event ===
Event: agent_err_backend
Value: 1
===========================

=== NIXL Telemetry Event ===
Event name: agent_err_remote_disconnect
Value: 1
===========================

=== NIXL Telemetry Event ===
Event name: NIXL_ERR_NOT_FOUND
Value: 1
===========================

=== NIXL Telemetry Event ===
Event name: agent_error
Value: 18446744073709551613
===========================

=== NIXL Telemetry Event ===
Event name: agent_telemetry_events_dropped
Value: 17
===========================
";

#[test]
fn errors_by_status_and_dropped_events_in_every_spelling() {
    let s = summarize(&parse(ERRORS, true).expect("parse"));
    assert_eq!(s.errors["remote_disconnect"], 2);
    assert_eq!(
        s.errors["backend"], 2,
        "agent_err_backend and agent_error -3"
    );
    assert_eq!(s.errors["not_found"], 1);
    assert_eq!(s.error_total(), 5);
    assert_eq!(s.dropped, 17);
}

#[test]
fn a_cut_event_at_the_end_is_left_out_only_when_the_reader_was_stopped() {
    let cut = format!("{INITIATOR}\n=== NIXL Telemetry Event ===\nEvent name: agent_tx_bytes\n");
    let out = parse(&cut, false).expect("stopped reader");
    assert!(out.partial_tail);
    assert_eq!(out.events.len(), 133);
    assert_eq!(
        parse(&cut, true),
        Err(TelemetryError::Unterminated(672)),
        "a reader that exited by itself ends at an event's end"
    );
}

#[test]
fn garbage_is_refused_with_its_line() {
    let cases: &[(&str, &str)] = &[
        ("hello world\n", "not a line the telemetry reader prints"),
        (
            "=== NIXL Telemetry Event ===\nEvent name: a\nValue: x\n===\n",
            "bad value",
        ),
        (
            "=== NIXL Telemetry Event ===\nEvent name: a b\nValue: 1\n===\n",
            "bad event name",
        ),
        (
            "=== NIXL Telemetry Event ===\nValue: 1\n===\n",
            "event without a name or a value",
        ),
        (
            "=== NIXL Telemetry Event ===\nEvent name: a\nEvent name: b\n",
            "a second event name",
        ),
        (
            "=== NIXL Telemetry Event ===\nEvent name: a\nValue: 1\nValue: 2\n",
            "a second value",
        ),
        (
            "=== NIXL Telemetry Event ===\n=== NIXL Telemetry Event ===\n",
            "not a line of an event",
        ),
        ("Buffer capacity: many events\n", "bad capacity"),
        (
            "Successfully opened telemetry buffer (version: ?)\n",
            "no version number",
        ),
    ];
    for (text, why) in cases {
        match parse(text, true) {
            Err(TelemetryError::Bad { why: w, .. }) => assert_eq!(w, *why, "{text}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let e = parse("x\n", true).expect_err("bad").to_string();
    assert_eq!(
        e,
        "telemetry reader output, line 1: not a line the telemetry reader prints: `x`"
    );
}

#[test]
fn input_is_bounded() {
    let big = "\n".repeat(MAX_BYTES + 1);
    assert_eq!(parse(&big, true), Err(TelemetryError::TooLarge(MAX_BYTES)));
    let many = "\n".repeat(MAX_LINES + 1);
    assert_eq!(
        parse(&many, true),
        Err(TelemetryError::TooManyLines(MAX_LINES))
    );
}

/// Property: lines from the reader's own vocabulary, shuffled, cut and mixed with
/// junk, never panic; what parses sums up without panicking, and its totals add up.
#[test]
fn property_random_reader_output_never_panics() {
    let words = [
        OPEN,
        "===========================",
        "Event name: agent_xfer_time",
        "Event name: agent_tx_requests_num",
        "Event: agent_err_backend",
        "Event name: agent_error",
        "Event name: agent_telemetry_events_dropped",
        "Value: 0",
        "Value: 18446744073709551615",
        "Value: 18446744073709551616",
        "Value: -1",
        "Value: 12",
        "Timestamp: 2025-01-15",
        "Category: ERROR",
        "Buffer capacity: 4096 events",
        "Successfully opened telemetry buffer (version: 4)",
        "Telemetry path: /tmp/x",
        "",
        "   ",
        "\u{ff}\u{0}",
        "Event name: ",
        "==",
        "=",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut parsed, mut with_events) = (0, 0);
    for _ in 0..3000 {
        let n = (next() % 40) as usize;
        let mut text = String::new();
        // One sample in three is valid blocks and blank lines only.
        let clean = next() % 3 == 0;
        for _ in 0..n {
            if clean || next() % 3 == 0 {
                let v = next() % 100_000;
                text.push_str(&format!(
                    "{OPEN}\nEvent name: agent_xfer_time\nValue: {v}\n===\n"
                ));
            } else {
                text.push_str(words[(next() % words.len() as u64) as usize]);
                text.push('\n');
            }
        }
        if next() % 4 == 0 {
            let cut = (next() as usize) % (text.len() + 1);
            text = text.chars().take(cut).collect();
        }
        let complete = next() % 2 == 0;
        if let Ok(out) = parse(&text, complete) {
            parsed += 1;
            let s = summarize(&out);
            with_events += usize::from(s.events > 0);
            let counted: u64 = s.by_name.values().map(|v| v.count).sum();
            assert_eq!(counted, s.events);
            assert_eq!(s.xfer.decades.iter().sum::<u64>(), s.xfer.count);
            assert!(s.xfer.p50_us <= s.xfer.p99_us && s.xfer.p99_us <= s.xfer.max_us);
        }
    }
    assert!(
        parsed > 300 && with_events > 100,
        "the generator also makes valid outputs ({parsed}, {with_events} with events)"
    );
}
