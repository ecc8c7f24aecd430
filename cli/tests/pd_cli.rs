//! `servescope sim --pd-cluster`, `pd run`, `attribute` and `diagnose` as real
//! processes on loopback: the engines export spans to `pd run`'s OTLP receiver, the
//! proxy batches the stream (the injected fault), and `diagnose` names it.

mod common;
use common::{bin, free_port, html_page, pd_cluster, pd_run, pd_sim, run};

#[test]
fn pd_run_then_attribute_and_diagnose() {
    let otlp = free_port();
    let (_sim, urls) = pd_cluster(
        pd_sim()
            .args(["--stream-batch-ms", "40", "--otlp-traces-endpoint"])
            .arg(format!("127.0.0.1:{otlp}")),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pd.db");
    let html = dir.path().join("pd.html");
    let (out, so, se) = run(pd_run(&urls)
        .args(["--concurrency", "2", "--num-prompts", "6"])
        .args([
            "--input-len",
            "64",
            "--output-len",
            "30",
            "--scrape-interval",
            "100ms",
        ])
        .args(["--span-wait", "700ms", "--otlp-listen"])
        .arg(format!("127.0.0.1:{otlp}"))
        .arg("--db")
        .arg(&db));
    assert!(out.status.success(), "{so}\n{se}");
    assert!(se.contains("pd run 1:") && se.contains("0 failed"), "{se}");
    assert!(so.contains("6 with a P span, 6 with a D span"), "{so}");
    assert!(
        so.contains("p_prefill") && so.contains("kv_transfer"),
        "{so}"
    );
    assert!(so.contains("(stream_batching)"), "{so}");

    let out = bin()
        .args(["diagnose", "1", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["stream_batching"]);

    let page = html_page(&["attribute", "1", "--html"], &html, &db);
    assert!(page.contains("<svg") && page.contains("Stream batching inflates ITL"));
    assert!(page.contains("Slowest requests at concurrency 2"));

    // Clear errors: an unknown run, a bad capacity, a missing store.
    let (out, _, se) = run(bin().args(["attribute", "7", "--db"]).arg(&db));
    assert!(!out.status.success() && se.contains("7"), "{se}");
    let (out, _, se) = run(bin()
        .args(["diagnose", "1", "--capacity-gbps=-3", "--db"])
        .arg(&db));
    assert!(
        !out.status.success() && se.contains("--capacity-gbps"),
        "{se}"
    );
    let (out, _, se) = run(bin()
        .args(["diagnose", "1", "--db"])
        .arg(dir.path().join("nope.db")));
    assert!(!out.status.success() && se.contains("no store"), "{se}");
}

/// One instance given as both roles is refused before anything is sent: its prefill
/// would be counted twice.
#[test]
fn pd_run_refuses_the_same_url_as_prefill_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pd.db");
    let engine = format!("http://127.0.0.1:{}", free_port());
    let out = bin()
        .args(["pd", "run", "--proxy", &engine, "--prefill", &engine])
        .args(["--decode", &format!("{engine}/"), "--no-otlp"])
        .args(["--concurrency", "1", "--num-prompts", "1", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{se}");
    assert!(
        se.contains(&format!(
            "{engine} is given both as --prefill and as --decode"
        )) && se.contains("counted twice"),
        "{se}"
    );
    assert!(!db.exists(), "nothing was run");
}
