//! Fault drills as process tests on loopback: an agent killed and restarted while
//! `servescope record` runs (the restart and the new instance are recorded apart,
//! not glued onto the old sequence), and `exp run` and `pd run` killed with SIGKILL
//! in the middle of a point (the rerun finishes with every point once, every request
//! once).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    agent_on, bin, loopback_agent_with, pd_cluster, pd_run, pd_sim, sim_experiment, success, Kill,
};
use servescope_coordinator::Store;

fn token(dir: &std::path::Path) -> std::path::PathBuf {
    let tok = dir.join("token");
    std::fs::write(&tok, "drill-token-0123456789\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    tok
}

#[test]
fn agent_killed_and_restarted_during_record_is_a_recorded_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token(dir.path());
    let flags = ["--host-interval-ms", "50", "--no-kmsg"];
    let (mut first, addr) = loopback_agent_with(&tok, &flags).expect("agent");
    let db = dir.path().join("r.db");
    let rec = bin()
        .args([
            "record",
            "-q",
            "--agent",
            &addr,
            "--duration",
            "5s",
            "--token-file",
        ])
        .arg(&tok)
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut rec = Kill(rec);
    std::thread::sleep(Duration::from_millis(1500));
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let (_second, _) = agent_on(&tok, &addr, &flags).expect("agent again");
    assert!(rec.0.wait().unwrap().success());

    let st = Store::open(&db).unwrap();
    let run = st.runs().unwrap()[0].id;
    let agents = st.run_agents(run).unwrap();
    assert_eq!(agents.len(), 2, "two instances: {agents:?}");
    assert_ne!(agents[0].instance, agents[1].instance);
    assert_eq!(
        st.restarts(run).unwrap(),
        vec![(agents[0].agent_id, agents[1].agent_id)]
    );
    assert!(agents[0].reconnects >= 1);
    let old = st.seqs(run, agents[0].agent_id).unwrap();
    let new = st.seqs(run, agents[1].agent_id).unwrap();
    assert!(
        old.len() > 10 && new.len() > 10,
        "{} {}",
        old.len(),
        new.len()
    );
    assert_eq!(old, (old[0]..=*old.last().unwrap()).collect::<Vec<_>>());
    assert_eq!(
        new,
        (1..=*new.last().unwrap()).collect::<Vec<_>>(),
        "the new instance from its first sequence, under its own agent row"
    );
    let show = success(bin().args(["show", &run.to_string(), "--db"]).arg(&db));
    assert!(show.contains("agent restarted:"), "{show}");
}

#[test]
fn exp_run_killed_mid_point_resumes_with_every_request_once() {
    let exp = sim_experiment(
        "drill",
        "  concurrency: [1, 2]\n  lengths: ['16:40']\n  num_prompts: 30\n  trials: 2\n",
    );
    // The first point stored, the second under way: SIGKILL, no warning.
    let (mut run, _err) = exp.run_until("[1/4]");
    std::thread::sleep(Duration::from_millis(150));
    run.0.kill().unwrap();
    run.0.wait().unwrap();
    let stored = || {
        let st = Store::open(&exp.db).unwrap();
        let id = st.experiment("drill").unwrap().expect("experiment").id;
        st.exp_points(id).unwrap()
    };
    let before = stored().len();
    assert!((1..4).contains(&before), "{before} points before the kill");

    success(&mut exp.exp_run());
    let pts = stored();
    let mut keys: Vec<&str> = pts.iter().map(|p| p.key.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "every point once: {keys:?}");
    let st = Store::open(&exp.db).unwrap();
    for p in &pts {
        assert_eq!(p.status, "done", "{}", p.key);
        let reqs = st.point_requests(p.point_id).unwrap();
        let idx: Vec<i64> = reqs.iter().map(|r| r.idx).collect();
        assert_eq!(
            idx,
            (0..30).collect::<Vec<_>>(),
            "{}: each request once",
            p.key
        );
        let mut ids: Vec<&str> = reqs.iter().map(|r| r.request_id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 30, "{}", p.key);
        assert!(reqs.iter().all(|r| r.error_class.is_none()), "{}", p.key);
    }
    // The killed point left no run behind: one exp run per stored point.
    let exp_runs = st
        .runs()
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == servescope_coordinator::store::RunKind::Exp)
        .count();
    assert_eq!(exp_runs, 4);
}

#[test]
fn pd_run_killed_mid_point_resumes_with_every_request_once() {
    let (_sim, urls) = pd_cluster(&mut pd_sim());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pd.db");
    let pd = |extra: &[&str]| {
        let mut c = pd_run(&urls);
        c.args(["--concurrency", "1,2"])
            .args([
                "--num-prompts",
                "20",
                "--input-len",
                "32",
                "--output-len",
                "30",
            ])
            .args(["--scrape-interval", "200ms", "--no-otlp", "--db"])
            .arg(&db)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let mut run = Kill(pd(&[]).spawn().unwrap());
    // The first point stored, the second under way: SIGKILL.
    let t0 = Instant::now();
    let run_id = loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "no point stored");
        std::thread::sleep(Duration::from_millis(50));
        let Ok(st) = Store::open(&db) else { continue };
        let Some(r) = st.runs().ok().and_then(|r| r.into_iter().next()) else {
            continue;
        };
        if st.points(r.id).map(|p| p.len()).unwrap_or(0) >= 1 {
            break r.id;
        }
    };
    std::thread::sleep(Duration::from_millis(200));
    run.0.kill().unwrap();
    run.0.wait().unwrap();
    let st = Store::open(&db).unwrap();
    assert_eq!(
        st.points(run_id).unwrap().len(),
        1,
        "killed mid second point"
    );
    assert_eq!(st.run(run_id).unwrap().status, "interrupted");
    drop(st);

    let status = pd(&["--resume", &run_id.to_string()]).status().unwrap();
    assert!(status.success());
    let st = Store::open(&db).unwrap();
    let r = st.run(run_id).unwrap();
    assert_eq!((r.status.as_str(), r.requests), ("done", 40));
    let pts = st.points(run_id).unwrap();
    let keys: Vec<(i64, i64)> = pts.iter().map(|p| (p.point, p.trial)).collect();
    assert_eq!(keys, vec![(0, 0), (1, 0)], "each point once");
    let mut ids = Vec::new();
    for p in &pts {
        let reqs = st.point_requests(p.id).unwrap();
        assert_eq!(reqs.len(), 20);
        assert!(reqs.iter().all(|q| q.error_class.is_none()));
        ids.extend(reqs.into_iter().map(|q| q.request_id));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "no request id twice across the resume");
    assert_eq!(st.runs().unwrap().len(), 1, "resumed into the same run");
}
