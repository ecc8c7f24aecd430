//! The unified report in a real browser. A loopback fabric probe between two agents
//! (libfabric tcp; left out where libfabric is missing), then a `pd run` through the
//! simulator's P/D cluster with a seeded fault (the proxy batches the stream),
//! linked to that probe, recording an agent on loopback over the p5-like sysfs
//! fixture while the test moves one EFA device's byte counters; the example node's
//! GPU readings (this machine has no GPU) join the recording at times across the
//! load. A `startup run` against the simulator's startup mode adds a startup trial.
//! `servescope report` renders the pd and startup runs; headless
//! Chromium then takes a screenshot (non-blank: distinct colours counted in a canvas),
//! measures every chart's SVG (non-zero layout box, text) and collects the console's
//! errors (none allowed).
//!
//! Without Chromium the test says why and passes; with `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{bin, free_port, pd_cluster, pd_run, pd_sim, run};

use servescope_agent::collect::rdma::fixture::{bump_counters, write_one_efa_tree};
use servescope_coordinator::store::RunKind;
use servescope_coordinator::Store;
use servescope_proto::v1::{sample, Sample};

const TOKEN: &str = "report-browser-token-1234";

/// No NVML on the agents (the example node stands in for the GPUs).
fn cfg_a_nvml(dir: &Path) -> Option<PathBuf> {
    Some(dir.join("no-such-libnvidia-ml.so.1"))
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SERVESCOPE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

fn headless(browser: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--allow-file-access-from-files",
        "--virtual-time-budget=10000",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    c
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Runs `page` (HTML written to `dir`) with `--dump-dom` and returns the JSON the
/// page's script left in `<pre id="probe">`, and Chromium's stderr.
fn probe(browser: &Path, dir: &Path, name: &str, page: &str) -> (serde_json::Value, String) {
    let path = dir.join(name);
    std::fs::write(&path, page).unwrap();
    let (out, so, se) = run(headless(browser)
        .args(["--dump-dom", "--window-size=1400,1000"])
        .arg(format!("file://{}", path.display())));
    assert!(out.status.success(), "{se}");
    let start = so
        .find("<pre id=\"probe\">")
        .unwrap_or_else(|| panic!("{so}\n{se}"));
    let body = &so[start + 16..];
    let text = &body[..body.find("</pre>").unwrap()];
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    (serde_json::from_str(&text).unwrap(), se)
}

/// Script put first in the head: every error and `console.error` is kept.
const CATCH: &str = "<script>window.__errs=[];addEventListener('error',e=>__errs.push(String(e.message)));const __ce=console.error;console.error=(...a)=>{__errs.push(a.join(' '));__ce(...a)};</script>";
/// Script put last in the body: each SVG's layout box and text, the page's height.
const MEASURE: &str = "<script>(()=>{const svgs=[...document.querySelectorAll('svg')].map(s=>{const r=s.getBoundingClientRect();const t=s.querySelector('text');return {w:r.width,h:r.height,text:s.textContent.trim().length,title:t?t.textContent:''}});const p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify({svgs,errors:__errs,height:document.documentElement.scrollHeight});document.body.appendChild(p)})()</script>";

/// The report's run: pd run with the agent recorded; then the example node's GPU
/// readings added to the recording.
fn record_pd_run(dir: &Path) -> Runs {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sys = dir.join("sys");
    let efa = write_one_efa_tree(&sys, 1).unwrap();
    let mut cfg = servescope_agent::AgentConfig::loopback(Some(TOKEN.into()));
    cfg.sysfs_root = sys.clone();
    cfg.nvml_lib = cfg_a_nvml(dir);
    cfg.kmsg = false;
    cfg.startup_watch = false;
    cfg.rdma_interval = Duration::from_millis(100);
    let agent = rt.block_on(servescope_agent::start(cfg)).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bumper = {
        let (stop, sys) = (Arc::clone(&stop), sys.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for name in ["tx_bytes", "rx_bytes"] {
                    bump_counters(&sys, &efa, Some(1), name, 40_000_000).unwrap();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut cfg_b = servescope_agent::AgentConfig::loopback(Some(TOKEN.into()));
    cfg_b.sysfs_root = sys.clone();
    cfg_b.nvml_lib = cfg_a_nvml(dir);
    cfg_b.kmsg = false;
    cfg_b.startup_watch = false;
    let agent_b = rt.block_on(servescope_agent::start(cfg_b)).unwrap();
    let db = dir.join("r.db");
    let (out, _, se) = run(bin()
        .args(["fabric", "probe", "--from", &agent.grpc_addr.to_string()])
        .args(["--to", &agent_b.grpc_addr.to_string(), "--token-file"])
        .arg(&token)
        .args(["--transport", "libfabric:tcp", "--sizes", "4K,64K,1M"])
        .args(["--iterations", "200", "--latency-iterations", "0", "--db"])
        .arg(&db));
    let fabric_run = out.status.success().then_some(1);
    if fabric_run.is_none() {
        eprintln!("no fabric section: the loopback probe failed: {se}");
    }
    rt.block_on(agent_b.shutdown());
    let otlp = free_port();
    let (_sim, urls) = pd_cluster(
        pd_sim()
            .args(["--stream-batch-ms", "40"])
            .arg("--otlp-traces-endpoint")
            .arg(format!("127.0.0.1:{otlp}")),
    );
    let mut pd = pd_run(&urls);
    if let Some(f) = fabric_run {
        pd.args(["--fabric-run", &f.to_string()]);
    }
    let (out, so, se) = run(pd
        .args(["--concurrency", "1,4", "--num-prompts", "12"])
        .args(["--input-len", "64", "--output-len", "30"])
        .args(["--scrape-interval", "100ms", "--span-wait", "700ms"])
        .arg("--otlp-listen")
        .arg(format!("127.0.0.1:{otlp}"))
        .args(["--agent", &agent.grpc_addr.to_string(), "--token-file"])
        .arg(&token)
        .arg("--db")
        .arg(&db));
    stop.store(true, Ordering::Relaxed);
    bumper.join().unwrap();
    rt.block_on(agent.shutdown());
    assert!(out.status.success(), "{so}\n{se}");

    // The example node's GPUs, over the load's minutes, in the same recording.
    let mut store = Store::open(&db).unwrap();
    let pd_run = store
        .runs()
        .unwrap()
        .iter()
        .find(|r| r.kind == RunKind::Pd)
        .unwrap()
        .id;
    let tele = store
        .run_links(pd_run)
        .unwrap()
        .telemetry_run
        .expect("linked");
    let points = store.points(pd_run).unwrap();
    let (t0, _) = store.point_span(points[0].id).unwrap();
    let (_, t1) = store.point_span(points[points.len() - 1].id).unwrap();
    let (inv, samples) = servescope_agent::exposition::example_node();
    let gpu = samples
        .iter()
        .find(|s| matches!(s.data, Some(sample::Data::Gpu(_))))
        .unwrap();
    let id = store.agent_id("p5-node-a:7733", &inv).unwrap();
    store.add_run_agent(tele, id).unwrap();
    store.save_inventory(tele, id, &inv).unwrap();
    let n = 20u64;
    let series: Vec<Sample> = (0..n)
        .map(|i| {
            let mut s = gpu.clone();
            s.seq = i + 1;
            s.t_ns = (t0 + (t1 - t0) * i as i64 / (n as i64 - 1)) as u64;
            if let Some(sample::Data::Gpu(g)) = &mut s.data {
                for r in &mut g.gpus {
                    r.util_gpu_pct = Some((20 + 4 * i as u32 + r.index).min(100));
                    r.pcie_tx_bytes = r.pcie_tx_bytes.map(|v| v + i * 500_000_000);
                    r.pcie_rx_bytes = r.pcie_rx_bytes.map(|v| v + i * 900_000_000);
                    r.nvlink_tx_bytes = r.nvlink_tx_bytes.map(|v| v + i * 2_000_000_000);
                    r.nvlink_rx_bytes = r.nvlink_rx_bytes.map(|v| v + i * 2_000_000_000);
                }
            }
            s
        })
        .collect();
    store.save_samples(tele, id, &series).unwrap();
    Runs {
        db,
        pd: pd_run,
        fabric: fabric_run.is_some(),
    }
}

/// A `startup run` against the simulator's startup mode, stored; returns its run id.
fn record_startup_run(dir: &Path, db: &Path) -> i64 {
    let log = dir.join("sim.log");
    let port = free_port();
    let phases = "init=0.2,download=0.3,weight_load=0.4,compile=0.3,profile=0.2,kv_cache=0.2,graph_capture=0.4,api=0.1";
    let cmd = format!(
        "'{}' sim --listen 127.0.0.1:{port} --model m --startup-phases '{phases}' --startup-log '{}' --startup-log-millis",
        env!("CARGO_BIN_EXE_servescope"),
        log.display()
    );
    let (out, so, se) = run(bin()
        .args([
            "startup",
            "run",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
        ])
        .args(["--model", "m", "--start-cmd", &cmd, "--log"])
        .arg(&log)
        .args(["--timeout", "60s", "--min-gap", "0.05", "--db"])
        .arg(db));
    assert!(out.status.success(), "{so}\n{se}");
    let store = Store::open(db).unwrap();
    let runs = store.runs().unwrap();
    runs.iter().find(|r| r.kind == RunKind::Startup).unwrap().id
}

struct Runs {
    db: PathBuf,
    pd: i64,
    fabric: bool,
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and no chromium on PATH: scripts/test.sh installs Debian's chromium"
        );
        eprintln!("skipped: no chromium on PATH (scripts/test.sh installs Debian's chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runs = record_pd_run(dir.path());
    let startup = record_startup_run(dir.path(), &runs.db);
    let db = runs.db.clone();
    let html = dir.path().join("report.html");
    let (out, so, se) = run(bin()
        .args(["report", &runs.pd.to_string(), &startup.to_string(), "-o"])
        .arg(&html)
        .arg("--db")
        .arg(&db));
    assert!(out.status.success(), "{so}\n{se}");
    let page = std::fs::read_to_string(&html).unwrap();
    for s in [
        "<h2>Findings</h2>",
        "Stream batching inflates ITL",
        "Output throughput vs load",
        "mean TTFT by component",
        "per-request waterfall (TTFT)",
        "TTFT of each request, at its send time",
        "Requests in flight",
        "GPU utilisation",
        "GPU memory used",
        "GPU power",
        "PCIe traffic",
        "NVLink traffic",
        "RDMA traffic",
        "NIC traffic",
        "Host CPU",
        "Startup waterfall",
        "CUDA graph capture",
    ] {
        assert!(page.contains(s), "missing {s}");
    }
    if runs.fabric {
        assert!(page.contains("Fabric probe: bandwidth vs message size"));
        assert!(page.contains("libfabric:tcp") && page.contains("provider"));
    }
    assert!(page.find("<h2>Findings</h2>") < page.find("Output throughput vs load"));
    assert!(!page.to_ascii_lowercase().contains("<script"));
    let charts = page.matches("<svg").count();

    // Layout, text and console.
    let probed = page
        .replacen("<head>", &format!("<head>{CATCH}"), 1)
        .replacen("</body>", &format!("{MEASURE}</body>"), 1);
    let (v, se) = probe(&browser, dir.path(), "probe.html", &probed);
    let svgs = v["svgs"].as_array().unwrap();
    assert_eq!(svgs.len(), charts, "{v}");
    for s in svgs {
        assert!(
            s["w"].as_f64().unwrap() > 0.0 && s["h"].as_f64().unwrap() > 0.0,
            "{s}"
        );
        assert!(s["text"].as_u64().unwrap() > 0, "{s}");
    }
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    let console: Vec<&str> = se
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("ERROR")))
        .collect();
    assert!(console.is_empty(), "{console:?}");

    // A screenshot of the whole page, not blank.
    let height = v["height"].as_f64().unwrap().clamp(800.0, 16000.0) as u32;
    let shot = dir.path().join("report.png");
    let (out, _, se) = run(headless(&browser)
        .arg(format!("--window-size=1400,{height}"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display())));
    assert!(out.status.success() && shot.exists(), "{se}");
    let png = std::fs::read(&shot).unwrap();
    if let Some(keep) = std::env::var_os("SERVESCOPE_REPORT_SCREENSHOT") {
        std::fs::write(keep, &png).unwrap();
    }
    let count = format!(
        "<!DOCTYPE html><html><body><img id=i src=\"data:image/png;base64,{}\"><script>addEventListener('load',()=>{{const i=document.getElementById('i');const c=document.createElement('canvas');c.width=i.naturalWidth;c.height=i.naturalHeight;const x=c.getContext('2d');x.drawImage(i,0,0);const d=x.getImageData(0,0,c.width,c.height).data;const seen=new Set();let ink=0;for(let k=0;k<d.length;k+=4){{const v=(d[k]<<16)|(d[k+1]<<8)|d[k+2];seen.add(v);if(v!==0xffffff&&v!==0xfafafa)ink++}}const p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify({{w:c.width,h:c.height,colours:seen.size,ink}});document.body.appendChild(p)}})</script></body></html>",
        base64(&png)
    );
    let (v, _) = probe(&browser, dir.path(), "count.html", &count);
    let (w, h) = (v["w"].as_u64().unwrap(), v["h"].as_u64().unwrap());
    assert_eq!((w, h), (1400, u64::from(height)), "{v}");
    assert!(v["colours"].as_u64().unwrap() > 50, "{v}");
    assert!(v["ink"].as_u64().unwrap() > w * h / 50, "{v}");
}

#[test]
fn base64_matches_the_rfc_vectors() {
    for (i, o) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(i.as_bytes()), o);
    }
}
