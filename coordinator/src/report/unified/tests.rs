use super::*;
use crate::analysis::startup::phase::{Phase, PhaseKind, Source};
use crate::analysis::startup::Timeline;
use crate::store::ProbeOutcome;
use servescope_proto::v1::ProbeSizeResult;

#[test]
fn fabric_and_startup_runs_get_their_sections_and_a_bare_run_is_an_error() {
    let mut store = Store::in_memory().expect("store");
    let fab = store
        .create_run(RunKind::Fabric, "loopback", 1, "{}")
        .expect("run");
    let probe = ProbeOutcome {
        from: "a:1".into(),
        to: "b:2".into(),
        transport: "libfabric:tcp".into(),
        results: vec![ProbeSizeResult {
            size: 1 << 20,
            op: "tag".into(),
            bandwidth_bps: 2e9,
            ..Default::default()
        }],
        ..Default::default()
    };
    store.save_fabric_probe(fab, &probe).expect("probe");
    let mut t = Timeline::new(None);
    t.phases
        .push(Phase::new(PhaseKind::ModelLoad, Source::Log, 1.0).span(0, 3_000_000_000));
    let args = serde_json::json!({"trials": [{"timeline": t}]});
    let st = store
        .create_run(RunKind::Startup, "cold <1>", 2, &args.to_string())
        .expect("run");
    let page = render(&gather(&store, &[fab, st]).expect("gather"));
    assert!(page.find("<h2>Findings</h2>") < page.find("Fabric probes"));
    assert!(page.contains("Fabric probe: bandwidth vs message size"));
    assert!(page.contains("a:1 → b:2") && page.contains("<td>2.00</td>"));
    assert!(page.contains("Startup waterfall: run 2 cold &lt;1&gt; · trial 1"));
    // Every run kind is diagnosed: the startup run's trial trips no rule.
    assert!(page.contains("No finding: nothing in this run trips a diagnosis rule."));
    assert!(!page.contains("Throughput") && !page.contains("Node telemetry"));
    assert_eq!(page.matches("<svg").count(), 2);
    assert_eq!(page.matches("<div").count(), page.matches("</div>").count());
    assert_eq!(
        page.matches("<section").count(),
        page.matches("</section>").count()
    );

    let rec = store
        .create_run(RunKind::Record, "empty", 3, "{}")
        .expect("run");
    match gather(&store, &[rec]) {
        Err(ReportError::Empty(ids)) => assert_eq!(ids, vec![rec]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(gather(&store, &[]), Err(ReportError::NoRuns)));
}
