//! The Ray Serve REST path against a real Ray (`ray[serve]` from PyPI, on CPU): a Ray
//! head started here, a Serve config applied through the dashboard's
//! `PUT /api/serve/applications/` by [`RayServeClient`], awaited until RUNNING, one
//! streamed completion through Serve's HTTP proxy to a deployment
//! (tests/ray_serve/forward.py) that forwards to the simulator, then `delete()` and
//! the application gone.
//!
//! Needs `SERVESCOPE_RAY_PYTHON` (the python of scripts/ray_venv.sh's venv; `ray` is
//! next to it). Without it the test says it skipped, or fails when
//! `SERVESCOPE_REQUIRE_RAY=1`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use servescope_coordinator::orchestration::load::http::HttpClient;
use servescope_coordinator::orchestration::ray::{AppStatus, RayServeClient};
use servescope_sim::SimConfig;

const APP: &str = "forward";

/// A Ray head of our own; `ray stop --force` and its temp dir removed on drop.
struct RayHead {
    ray: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl RayHead {
    fn run(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let log = self.dir.path().join("cmd.log");
        let out = File::create(&log).map_err(|e| e.to_string())?;
        let mut child = Command::new(&self.ray)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.ray.display()))?;
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break Some(s);
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Some(s) if s.success() => Ok(text),
            Some(s) => Err(format!("`ray {}` failed ({s}):\n{text}", args.join(" "))),
            None => Err(format!(
                "`ray {}` still running after {timeout:?}:\n{text}",
                args.join(" ")
            )),
        }
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        eprintln!("ray_serve: ray stop --force");
        if let Err(e) = self.run(&["stop", "--force"], Duration::from_secs(60)) {
            eprintln!("ray_serve: {e}");
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn say(start: Instant, what: impl std::fmt::Display) {
    eprintln!("ray_serve [{:>6.1}s] {what}", start.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_config_applied_awaited_used_and_deleted_on_a_real_ray() {
    let Some(python) = std::env::var_os("SERVESCOPE_RAY_PYTHON").filter(|p| !p.is_empty()) else {
        if std::env::var("SERVESCOPE_REQUIRE_RAY").as_deref() == Ok("1") {
            panic!(
                "SERVESCOPE_REQUIRE_RAY=1 but SERVESCOPE_RAY_PYTHON is unset; \
                 run scripts/ray_venv.sh and export its last line"
            );
        }
        println!(
            "skipped: SERVESCOPE_RAY_PYTHON is unset (scripts/ray_venv.sh makes a venv with ray[serve])"
        );
        return;
    };
    let ray = Path::new(&python).with_file_name("ray");
    assert!(ray.is_file(), "no `ray` next to {python:?}");
    // Whole test bounded: Ray on 2 cores is slow, but not this slow.
    tokio::time::timeout(Duration::from_secs(480), scenario(ray))
        .await
        .expect("the Ray Serve test took over 8 minutes");
}

async fn scenario(ray: PathBuf) {
    let t0 = Instant::now();
    let forward_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ray_serve");
    let forward_dir = forward_dir.to_str().unwrap().to_string();
    // Short: Ray's Unix sockets live under it (108-byte path limit).
    let dir = tempfile::Builder::new()
        .prefix("ray")
        .tempdir_in("/tmp")
        .unwrap();
    let (gcs, dash, client_port, agent, serve_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let head = RayHead {
        ray,
        env: vec![
            // Workers inherit the raylet's environment: forward.py is importable.
            ("PYTHONPATH".into(), forward_dir.clone()),
            ("RAY_USAGE_STATS_ENABLED".into(), "0".into()),
            ("RAY_TMPDIR".into(), dir.path().display().to_string()),
        ],
        dir,
    };
    let temp_dir = head.dir.path().join("t").display().to_string();
    say(
        t0,
        format!("ray start --head (dashboard 127.0.0.1:{dash}, gcs {gcs})"),
    );
    let args = [
        "start".to_string(),
        "--head".into(),
        "--num-cpus=2".into(),
        "--node-ip-address=127.0.0.1".into(),
        "--dashboard-host=127.0.0.1".into(),
        format!("--dashboard-port={dash}"),
        format!("--port={gcs}"),
        format!("--ray-client-server-port={client_port}"),
        format!("--dashboard-agent-listen-port={agent}"),
        "--include-dashboard=true".into(),
        "--disable-usage-stats".into(),
        format!("--temp-dir={temp_dir}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = tokio::task::block_in_place(|| head.run(&args, Duration::from_secs(180)));
    if let Err(e) = started {
        panic!("{e}");
    }
    say(t0, "ray head started");

    let sim = servescope_sim::start(
        SimConfig {
            prefill_base_s: 0.005,
            decode_s_per_token: 0.005,
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    say(t0, format!("sim at {}", sim.url()));

    let client = RayServeClient::new(&format!("http://127.0.0.1:{dash}")).unwrap();
    // The dashboard's HTTP server comes up a little after `ray start` returns.
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let initial = loop {
        match client.status().await {
            Ok(st) => break st,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                let msg = e.to_string();
                if msg != last {
                    say(t0, format!("dashboard not ready: {msg}"));
                    last = msg;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("dashboard never answered: {e}"),
        }
    };
    say(t0, format!("dashboard up: {initial}"));
    assert!(initial.applications.is_empty(), "{initial}");

    let config = serde_json::json!({
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": serve_port},
        "applications": [{
            "name": APP,
            "route_prefix": "/",
            "import_path": "forward:build",
            "args": {"upstream": sim.url()},
            "runtime_env": {"env_vars": {"PYTHONPATH": forward_dir}},
        }]
    });
    say(t0, format!("PUT {}", client.applications_url()));
    client.apply(&config).await.expect("apply");
    say(t0, "config accepted; waiting for RUNNING");
    let mut shown = String::new();
    let st = client
        .wait_running(
            &[APP],
            Duration::from_secs(240),
            Duration::from_millis(500),
            |st| {
                let now = st.to_string();
                if now != shown {
                    say(t0, &now);
                    shown = now;
                }
            },
        )
        .await
        .expect("the Serve application never ran");
    let app = st.app(APP).unwrap();
    assert_eq!(app.status, AppStatus::Running);
    assert_eq!(app.route_prefix.as_deref(), Some("/"));
    assert_eq!(
        st.http_options.as_ref().and_then(|h| h.port),
        Some(serve_port),
        "{st:?}"
    );
    say(t0, format!("RUNNING: {st}"));

    // One streamed completion through Serve's proxy, answered by the sim.
    let http = HttpClient::new(1);
    let url = format!("http://127.0.0.1:{serve_port}/v1/completions");
    let body = serde_json::json!({
        "model": "servescope-sim", "prompt": "hello ray serve", "max_tokens": 8,
        "stream": true, "ignore_eos": true,
    });
    let mut streamed = Vec::new();
    let mut frames = 0;
    let head_seen = http
        .post_stream(
            &url,
            &[(
                HeaderName::from_static("x-request-id"),
                HeaderValue::from_static("via-ray-1"),
            )],
            Bytes::from(body.to_string()),
            |_| {},
            |_, data| {
                frames += 1;
                streamed.extend_from_slice(data);
                true
            },
        )
        .await
        .expect("completion through Ray Serve");
    let text = String::from_utf8_lossy(&streamed);
    say(
        t0,
        format!(
            "completion: HTTP {}, x-request-id {:?}, {} bytes in {frames} frames",
            head_seen.status,
            head_seen.request_id,
            streamed.len()
        ),
    );
    assert_eq!(head_seen.status.as_u16(), 200, "{text}");
    assert_eq!(head_seen.request_id.as_deref(), Some("via-ray-1"), "{text}");
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let tokens = events
        .iter()
        .filter(|e| e.contains("\"cmpl-via-ray-1\"") && e.contains("\"text\""))
        .count();
    assert!(tokens >= 8, "{tokens} token events: {text}");

    say(t0, format!("DELETE {}", client.applications_url()));
    client
        .delete(Duration::from_secs(120), Duration::from_millis(500))
        .await
        .expect("delete");
    let after = client.status().await.unwrap();
    assert!(after.applications.is_empty(), "{after}");
    assert!(after.app(APP).is_none());
    say(t0, format!("deleted: {after}"));
    sim.shutdown().await;
    drop(head);
    say(t0, "done");
}
