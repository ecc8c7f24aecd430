//! `servescope selftest` as a user runs it: every fault of the matrix whose rule
//! this build has is named, the clean P/D run raises nothing, and it exits 0.

mod common;
use common::{bin, run};

#[test]
fn selftest_names_every_fault_and_the_clean_run_is_silent() {
    let (out, so, se) = run(bin().arg("selftest"));
    assert!(out.status.success(), "selftest failed: {so}\n{se}");
    assert!(so.starts_with("fault "), "{so}");
    let row = |fault: &str| {
        so.lines()
            .find(|l| l.starts_with(fault))
            .unwrap_or_else(|| panic!("no row {fault}: {so}"))
            .to_string()
    };
    assert!(
        row("none (clean P/D run)").contains("yes: nothing raised"),
        "{so}"
    );
    for (fault, rule) in [
        ("slow KV path", "kv_slow_transport"),
        ("failed KV transfers", "kv_transfer_failures"),
        ("serialised KV transfers", "kv_serialising"),
        ("prefill-bound", "prefill_bound"),
        ("decode-bound", "decode_bound"),
        ("proxy overhead", "proxy_overhead"),
        ("stream batching", "stream_batching"),
        ("gibberish after transfer", "gibberish_after_transfer"),
    ] {
        let r = row(fault);
        assert!(r.contains(rule) && r.contains(" yes: "), "{r}");
    }
    // The fixture's faults are injected and reported honestly, named or not.
    for fault in ["KV over TCP/IP", "NIC link down", "RDMA retransmits rising"] {
        let r = row(fault);
        assert!(r.contains(" yes: ") || r.contains(" n/a: "), "{r}");
    }
    assert!(so.contains(" 0 missed"), "{so}");
}
