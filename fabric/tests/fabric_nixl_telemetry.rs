//! NIXL's own telemetry on the real host-memory path: two `NixlEndpoint`s (each its
//! own driver child with the NIXL wheel from `scripts/nixl_venv.sh`) with
//! NIXL_TELEMETRY_ENABLE and a private NIXL_TELEMETRY_DIR, WRITE and READ run, then
//! NIXL's reader found in the same environment and run on every buffer of that
//! directory by our code: the transfer requests NIXL counted are the transfers the
//! probe ran (warm-up included), and a second read finds them consumed.
//! Skips, saying why, without the venv.

use std::time::Duration;

use servescope_fabric::nixl::telemetry_read::{candidate_sites, Reader, READ_WAIT};
use servescope_fabric::nixl::{NixlEndpoint, NixlOptions, PythonChoice};
use servescope_fabric::test_support::nixl_python;
use servescope_fabric::{Op, ProbeEndpoint, ProbePlan};

#[test]
fn telemetry_counts_the_transfers_the_probe_ran() {
    let Some(py) = nixl_python() else { return };
    let dir = tempfile::tempdir().expect("telemetry dir");
    let plan = ProbePlan {
        sizes: vec![256 << 10],
        ops: vec![Op::RmaWrite, Op::RmaRead],
        iterations: 7,
        warmup: 2,
        peer_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let opts = NixlOptions {
        python: PythonChoice {
            python: Some(py.clone()),
            ..Default::default()
        },
        block_size: 16 << 10,
        env: vec![
            ("NIXL_TELEMETRY_ENABLE".into(), "y".into()),
            (
                "NIXL_TELEMETRY_DIR".into(),
                dir.path().to_string_lossy().into_owned(),
            ),
        ],
        ..Default::default()
    };
    let mut target = NixlEndpoint::open(&opts, &plan).expect("target");
    let mut init = NixlEndpoint::open(&opts, &plan).expect("initiator");
    let (ti, ii) = (target.local_info(), init.local_info());
    target.connect(&ii).expect("connect target");
    init.connect(&ti).expect("connect initiator");
    let tp = plan.clone();
    let server = std::thread::spawn(move || {
        let r = target.run_responder(&tp, &|| false);
        (r, target)
    });
    let rows = init.run_driver(&plan, &|| false).expect("run");
    let (served, target) = server.join().expect("join");
    served.expect("target served");
    assert_eq!(rows.len(), 2);
    // NIXL flushes its events into the buffer every 100 ms; both agents stay alive
    // (as a serving engine does) while their buffers are read.
    std::thread::sleep(Duration::from_millis(400));

    let reader = Reader::find(&candidate_sites([], Some(&py))).expect("NIXL's reader in the venv");
    let bufs = reader.read_dir(dir.path(), READ_WAIT).expect("read");
    assert_eq!(bufs.len(), 2, "one buffer per NIXL agent: {bufs:?}");
    let per_op = u64::from(plan.iterations + plan.warmup);
    let summaries: Vec<_> = bufs
        .iter()
        .map(|b| {
            assert!(b.agent.starts_with("servescope-"), "{b:?}");
            b.result.as_ref().expect("summary")
        })
        .collect();
    let ini = summaries
        .iter()
        .find(|s| s.tx_requests > 0)
        .expect("the initiator's buffer");
    println!(
        "initiator: {} events, xfer {:?}, post {:?}",
        ini.events, ini.xfer, ini.post
    );
    assert_eq!(ini.tx_requests, per_op, "WRITE transfers: {ini:?}");
    assert_eq!(ini.rx_requests, per_op, "READ transfers: {ini:?}");
    assert_eq!(ini.tx_bytes, per_op * (256 << 10));
    assert_eq!(ini.rx_bytes, per_op * (256 << 10));
    assert_eq!(ini.xfer.count, 2 * per_op);
    assert_eq!(ini.post.count, 2 * per_op);
    assert!(ini.xfer.p50_us <= ini.xfer.p99_us);
    assert_eq!(ini.error_total(), 0);
    assert_eq!(ini.dropped, 0);
    assert_eq!(ini.version, Some(4));
    assert!(ini.by_name.contains_key("agent_memory_registered"));
    let tgt = summaries
        .iter()
        .find(|s| s.tx_requests == 0)
        .expect("the target's buffer");
    assert_eq!(
        (tgt.rx_requests, tgt.xfer.count),
        (0, 0),
        "the target posts nothing"
    );

    // Reading consumed the events.
    let again = reader.read_dir(dir.path(), READ_WAIT).expect("read again");
    for b in &again {
        let s = b.result.as_ref().expect("summary");
        assert_eq!((s.events, s.tx_requests), (0, 0), "{}", b.agent);
    }
    drop((init, target));
}
