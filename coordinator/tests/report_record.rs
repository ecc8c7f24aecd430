//! The unified report of a `record` run: an agent on loopback over the p5-like sysfs
//! fixture while the test moves one EFA device's byte counters at a known pace; the
//! report's telemetry holds that RDMA rate, host CPU and NIC series on one clock,
//! and the page shows their charts and nothing it has no data for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use servescope_agent::collect::rdma::fixture::{bump_counters, write_one_efa_tree};
use servescope_agent::AgentConfig;
use servescope_coordinator::orchestration::record::{record, RecordConfig};
use servescope_coordinator::report::unified::{self, telemetry::Kind};
use servescope_coordinator::{AgentEndpoint, Store};

const TOKEN: &str = "report-record-token-1234";
/// Bytes added to tx_bytes per bump, and the pause between bumps.
const STEP: u64 = 10_000_000;
const PAUSE: Duration = Duration::from_millis(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_run_report_shows_its_telemetry_on_one_clock() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    let efa = write_one_efa_tree(&sys, 3).unwrap();
    let mut cfg = AgentConfig::loopback(Some(TOKEN.into()));
    cfg.sysfs_root = sys.clone();
    cfg.nvml_lib = Some(dir.path().join("no-such-libnvidia-ml.so.1"));
    cfg.kmsg = false;
    cfg.startup_watch = false;
    cfg.host_interval = Duration::from_millis(100);
    cfg.rdma_interval = Duration::from_millis(100);
    let agent = servescope_agent::start(cfg).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let bumps = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bumper = {
        let (stop, sys, bumps) = (Arc::clone(&stop), sys.clone(), Arc::clone(&bumps));
        std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                bump_counters(&sys, &efa, Some(1), "tx_bytes", STEP).unwrap();
                bumps.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(PAUSE);
            }
            t0.elapsed()
        })
    };
    let db = dir.path().join("r.db");
    let rc = RecordConfig::new(
        vec![AgentEndpoint::new(
            agent.grpc_addr.to_string(),
            Some(TOKEN.into()),
        )],
        Duration::from_secs(3),
        db.clone(),
    );
    let out = record(rc, Default::default()).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let elapsed = bumper.join().unwrap();
    agent.shutdown().await;
    let pace = (bumps.load(Ordering::Relaxed) * STEP) as f64 / elapsed.as_secs_f64() / 1e9;

    let store = Store::open(&db).unwrap();
    let src = unified::gather(&store, &[out.run_id]).unwrap();
    let rdma = &src.telemetry.series[&Kind::Rdma];
    let tx: Vec<f64> = rdma
        .iter()
        .find(|(k, _)| k.ends_with(" tx"))
        .map(|(_, v)| v.iter().map(|p| p.1).collect())
        .unwrap();
    assert!(tx.len() >= 5, "{tx:?}");
    let mean = tx.iter().sum::<f64>() / tx.len() as f64;
    eprintln!(
        "RDMA tx mean {mean:.3} GB/s over {} points; bumped {pace:.3} GB/s",
        tx.len()
    );
    // The bumper's own pace (GB/s), within what a 1 s window over 100 ms readings
    // can see.
    assert!(
        (mean - pace).abs() < 0.15 * pace,
        "RDMA tx {mean:.3} GB/s vs {pace:.3} GB/s bumped"
    );
    assert!(src.telemetry.series.contains_key(&Kind::HostCpu));
    assert!(!src.telemetry.series.contains_key(&Kind::GpuUtilization));
    let (a, b) = src.telemetry.span().unwrap();
    assert!(b - a > 1_500_000_000 && b - a < 10_000_000_000, "{a}..{b}");

    let page = unified::render(&src);
    assert!(page.contains("RDMA traffic (all devices of a node)") && page.contains("Host CPU"));
    assert!(!page.contains("GPU utilisation") && !page.contains("Throughput"));
    assert!(page.contains(&format!("node telemetry from run(s) {}", out.run_id)));
    assert!(!page.contains("no data") && !page.contains("NaN"));
}
