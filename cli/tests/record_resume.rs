//! Resuming a recording after its recorder was killed: real processes on loopback
//! (the `servescope` binary recording a real agent), SIGKILL mid-run, then
//! `record --resume`. Within the agent's ring horizon the run ends up with exactly
//! the agent's sequence range, no duplicate and no hole; beyond it the loss is one
//! gap with the right count.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bin, loopback_agent_with, success, Kill};
use servescope_coordinator::Store;
use servescope_proto::test_support::assert_each_sequence_once;

fn token(dir: &Path) -> std::path::PathBuf {
    let tok = dir.join("token");
    std::fs::write(&tok, "resume-test-token-0123456789\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    tok
}

/// Starts `servescope record` for `duration`, waits until it has committed at least
/// `min_samples`, SIGKILLs it and returns the run id.
fn record_then_kill(db: &Path, tok: &Path, agent: &str, duration: &str, min_samples: i64) -> i64 {
    record_then_kill_with(db, tok, agent, duration, min_samples, &[])
}

/// [`record_then_kill`] with extra `record` flags.
fn record_then_kill_with(
    db: &Path,
    tok: &Path,
    agent: &str,
    duration: &str,
    min_samples: i64,
    extra: &[&str],
) -> i64 {
    let child = bin()
        .args([
            "record",
            "-q",
            "--agent",
            agent,
            "--duration",
            duration,
            "--token-file",
        ])
        .arg(tok)
        .args(extra)
        .arg("--db")
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut rec = Kill(child);
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "recorder stored nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Ok(st) = Store::open(db) else { continue };
        if let Some(r) = st.runs().ok().and_then(|r| r.into_iter().next()) {
            if r.samples >= min_samples {
                assert_eq!(r.status, "running");
                rec.0.kill().unwrap(); // SIGKILL
                rec.0.wait().unwrap();
                return r.id;
            }
        }
    }
}

fn runs_status(db: &Path, run: i64) -> String {
    let so = success(bin().args(["runs", "--json", "--db"]).arg(db));
    let v: serde_json::Value = serde_json::from_str(&so).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == run)
        .map(|r| r["status"].as_str().unwrap().to_string())
        .unwrap()
}

fn resume(db: &Path, tok: &Path, run: i64) {
    success(
        bin()
            .args(["record", "-q", "--resume", &run.to_string(), "--token-file"])
            .arg(tok)
            .arg("--db")
            .arg(db),
    );
}

#[test]
fn killed_recorder_resumes_with_every_sequence_once() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path());
    let (_agent, addr) =
        loopback_agent_with(&tok, &["--host-interval-ms", "50", "--no-kmsg"]).expect("agent");
    let db = dir.path().join("r.db");
    let run = record_then_kill(&db, &tok, &addr, "6s", 20);
    assert_eq!(runs_status(&db, run), "interrupted");
    let before = Store::open(&db).unwrap().cursors(run).unwrap();
    assert_eq!(before.len(), 1);
    let cut = before[0].last_seq.expect("a cursor");

    resume(&db, &tok, run);
    // A finished run does not resume again.
    let again = bin()
        .args(["record", "--resume", &run.to_string(), "--token-file"])
        .arg(&tok)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("it is done, not interrupted"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let st = Store::open(&db).unwrap();
    let r = st.run(run).unwrap();
    assert_eq!(r.status, "done");
    let agents = st.run_agents(run).unwrap();
    assert_eq!(agents.len(), 1, "the same agent instance, not a new one");
    let a = agents[0].agent_id;
    assert_eq!(agents[0].lost, 0);
    assert!(st.gaps(run, a).unwrap().is_empty());
    assert!(st.restarts(run).unwrap().is_empty());
    let seqs = st.seqs(run, a).unwrap();
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    assert!(
        last > cut + 20,
        "the resume recorded on (cut {cut}, last {last})"
    );
    assert_eq!(
        seqs,
        (first..=last).collect::<Vec<_>>(),
        "every sequence of the agent's range once"
    );
    assert_eq!(st.cursors(run).unwrap()[0].last_seq, Some(last));
}

#[test]
fn resume_beyond_the_horizon_stores_the_loss_as_one_counted_gap() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path());
    let (_agent, addr) = loopback_agent_with(
        &tok,
        &[
            "--host-interval-ms",
            "50",
            "--buffer-horizon-s",
            "1",
            "--no-kmsg",
        ],
    )
    .expect("agent");
    let db = dir.path().join("r.db");
    let run = record_then_kill(&db, &tok, &addr, "3s", 10);
    let cut = Store::open(&db).unwrap().cursors(run).unwrap()[0]
        .last_seq
        .expect("a cursor");
    // Three horizons later the samples after the cut are gone from the ring.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs_status(&db, run), "interrupted");
    resume(&db, &tok, run);

    let st = Store::open(&db).unwrap();
    assert_eq!(st.run(run).unwrap().status, "done");
    let agents = st.run_agents(run).unwrap();
    assert_eq!(agents.len(), 1);
    let a = agents[0].agent_id;
    let gaps = st.gaps(run, a).unwrap();
    // The resume's gap first; a loaded machine may add later ones (a stream that
    // fell a horizon behind), which must account for their samples the same way.
    let g = gaps.first().expect("the resume's gap");
    assert_eq!(g.requested_from_seq, cut + 1);
    assert!(
        g.lost >= 40,
        "3 s at 20+ samples/s lost, counted {}",
        g.lost
    );
    assert_eq!(
        agents[0].lost,
        gaps.iter().map(|g| g.lost as i64).sum::<i64>()
    );
    let gaps = gaps
        .iter()
        .map(|g| (g.requested_from_seq, g.resumed_at_seq, g.lost));
    let last = assert_each_sequence_once(&st.seqs(run, a).unwrap(), gaps);
    assert!(last > g.resumed_at_seq);
}

/// An experiment killed while it recorded a deployment's telemetry: the rerun's
/// telemetry step continues that run from its stored sequences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_telemetry_resumes_its_interrupted_recording() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path());
    let (_agent, addr) =
        loopback_agent_with(&tok, &["--host-interval-ms", "50", "--no-kmsg"]).expect("agent");
    let db = dir.path().join("r.db");
    let label = "exp: one telemetry";
    let run = record_then_kill_with(
        &db,
        &tok,
        &addr,
        "30s",
        20,
        &["--include-history", "--label", label],
    );
    let cut = Store::open(&db).unwrap().cursors(run).unwrap()[0]
        .last_seq
        .expect("a cursor");
    let ep = servescope_coordinator::AgentEndpoint::new(
        addr.clone(),
        Some("resume-test-token-0123456789".into()),
    );
    let got =
        servescope_coordinator::orchestration::exp::preflight::record_telemetry(&[ep], &db, label)
            .await
            .unwrap();
    assert_eq!(got, run, "the interrupted recording continued");
    let st = Store::open(&db).unwrap();
    assert_eq!(st.runs().unwrap().len(), 1);
    assert_eq!(st.run(run).unwrap().status, "done");
    let a = st.run_agents(run).unwrap()[0].agent_id;
    let seqs = st.seqs(run, a).unwrap();
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    assert_eq!(first, 1, "history from the agent's start");
    assert!(last > cut);
    assert_eq!(seqs, (first..=last).collect::<Vec<_>>());
}
