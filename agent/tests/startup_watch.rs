//! The startup watcher follows a fake serving process's stdout file and a
//! glob-matched file, and keeps following a file after it is truncated.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use servescope_agent::collect::startup_watch::{spawn, WatchConfig};
use servescope_agent::collect::Shutdown;
use servescope_agent::ring::{Ring, RingLimits};
use servescope_proto::v1::sample;

fn ring() -> Arc<Ring> {
    Arc::new(Ring::new(RingLimits {
        horizon_ns: u64::MAX,
        max_samples: 100_000,
        max_bytes: usize::MAX,
    }))
}

/// (source, message) of every startup_log event in the ring.
fn events(r: &Ring) -> Vec<(String, String)> {
    r.read_from(0, usize::MAX)
        .samples
        .iter()
        .filter_map(|s| match &s.data {
            Some(sample::Data::Event(e)) if e.kind == "startup_log" => {
                Some((e.source.clone(), e.message.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Waits up to 5 s for an event from `path` whose message contains `needle`.
fn wait_for(r: &Ring, path: &Path, needle: &str) -> bool {
    let src = path.display().to_string();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if events(r)
            .iter()
            .any(|(s, m)| *s == src && m.contains(needle))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn startup_watch_follows_serving_stdout_globs_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("replica.log");
    std::fs::write(
        &out,
        "old line before discovery: Loading weights took 99.0 seconds\n",
    )
    .unwrap();
    // A process whose command line says vLLM, stdout and stderr into `out`.
    let child = std::process::Command::new("sleep")
        .arg0("vllm-fake")
        .arg("30")
        .stdout(OpenOptions::new().append(true).open(&out).unwrap())
        .stderr(OpenOptions::new().append(true).open(&out).unwrap())
        .spawn()
        .unwrap();
    let _kill = Kill(child);
    let globbed = dir.path().join("worker-abc-01.out");
    std::fs::write(&globbed, "").unwrap();
    // A second name of the serving process's stdout, matched by a glob too: the
    // file is followed once.
    std::os::unix::fs::symlink(&out, dir.path().join("worker-link.out")).unwrap();
    std::fs::write(dir.path().join("raylet.out"), "").unwrap();

    let r = ring();
    let stop = Shutdown::default();
    let mut cfg = WatchConfig::new(vec![format!("{}/worker-*.out", dir.path().display())]);
    cfg.poll_every = Duration::from_millis(100);
    let h = spawn(cfg, Arc::clone(&r), stop.clone()).unwrap();
    // Let discovery open the files at their end.
    std::thread::sleep(Duration::from_millis(1500));

    append(
        &out,
        "(EngineCore_DP0 pid=7) INFO 11-06 10:00:00 [core.py:1] Waiting for init\n\
         (EngineCore_DP0 pid=7) INFO 11-06 10:00:01 [gpu_worker.py:1] nothing to see\n\
         (EngineCore_DP0 pid=7) INFO 11-06 10:00:30 [default_loader.py:267] Loading weights took 28.81 seconds\n\
         (EngineCore_DP0 pid=7) INFO 11-06 10:00:40 [kv_cache_utils.py:1] GPU KV cache size: 1,000 tokens\n",
    );
    assert!(
        wait_for(&r, &out, "Loading weights took 28.81"),
        "{:?}",
        events(&r)
    );
    assert!(wait_for(&r, &out, "GPU KV cache size"), "{:?}", events(&r));
    // The first new line is sent as the log's time anchor; other plain lines are not.
    assert!(wait_for(&r, &out, "Waiting for init"));
    let evs = events(&r);
    let weights = evs.iter().filter(|(_, m)| m.contains("28.81")).count();
    assert_eq!(weights, 1, "{evs:?}");
    assert!(
        !evs.iter().any(|(_, m)| m.contains("nothing to see")),
        "{evs:?}"
    );
    assert!(
        !evs.iter().any(|(_, m)| m.contains("99.0 seconds")),
        "{evs:?}"
    );

    // A glob-matched Ray worker file; a line written in two pieces.
    append(
        &globbed,
        "INFO 11-06 10:01:00 [api_server.py:1] Starting vLLM ",
    );
    std::thread::sleep(Duration::from_millis(300));
    append(&globbed, "API server 0 on http://0.0.0.0:8000\n");
    assert!(
        wait_for(&r, &globbed, "Starting vLLM API server 0 on"),
        "{:?}",
        events(&r)
    );

    // Truncation: the file is followed from its new start.
    std::fs::write(&globbed, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(
        &globbed,
        "INFO 11-06 10:02:00 [launcher.py:1] Application startup complete.\n",
    );
    assert!(
        wait_for(&r, &globbed, "Application startup complete"),
        "{:?}",
        events(&r)
    );

    // Rotation: the path now names a new file, read from its start.
    let rotated = dir.path().join("worker-abc-01.out.1");
    std::fs::rename(&globbed, &rotated).unwrap();
    std::fs::write(
        &globbed,
        "INFO 11-06 10:03:00 [x.py:1] Added request cmpl-1.\n",
    )
    .unwrap();
    assert!(
        wait_for(&r, &globbed, "Added request cmpl-1"),
        "{:?}",
        events(&r)
    );

    stop.trigger();
    h.join().unwrap();
    assert!(!events(&r).iter().any(|(s, _)| s.ends_with("raylet.out")));
}

#[test]
fn startup_watch_config_flags_and_file() {
    use clap::Parser;
    use servescope_agent::config::AgentArgs;
    use servescope_agent::AgentConfig;
    let base = [
        "servescope-agent",
        "--insecure-no-auth",
        "--listen",
        "127.0.0.1:0",
    ];
    let args = AgentArgs::try_parse_from(base).unwrap();
    let cfg = AgentConfig::from_args(&args).unwrap();
    assert!(cfg.startup_watch);
    assert_eq!(
        cfg.startup_log_globs,
        servescope_agent::collect::startup_watch::DEFAULT_GLOBS
    );
    let mut v = base.to_vec();
    v.extend([
        "--startup-log-glob",
        "/a/*.log",
        "--startup-log-glob",
        "/b/x.out",
        "--no-startup-watch",
    ]);
    let cfg = AgentConfig::from_args(&AgentArgs::try_parse_from(v).unwrap()).unwrap();
    assert!(!cfg.startup_watch);
    assert_eq!(cfg.startup_log_globs, ["/a/*.log", "/b/x.out"]);

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("agent.toml");
    std::fs::write(
        &f,
        "startup_log_globs = [\"/c/*.err\"]\nstartup_watch = false\n",
    )
    .unwrap();
    let mut v = base.to_vec();
    let fs = f.display().to_string();
    v.extend(["--config", fs.as_str()]);
    let cfg = AgentConfig::from_args(&AgentArgs::try_parse_from(v).unwrap()).unwrap();
    assert!(!cfg.startup_watch);
    assert_eq!(cfg.startup_log_globs, ["/c/*.err"]);
}
