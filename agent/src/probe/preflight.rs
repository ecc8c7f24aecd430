//! Facts for `servescope fabric check`: which fabric libraries load and what they
//! offer, and the fabric-related environment of serving processes on this node
//! (read from /proc/<pid>/environ). The judging (severity, fix) is the
//! coordinator's; the agent only reports what it sees.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use servescope_proto::v1::{FabricCheckResponse, ServingProcess};

/// Environment variable prefixes worth reporting.
pub const ENV_PREFIXES: &[&str] = &["FI_", "UCX_", "NIXL_", "NCCL_", "VLLM_NIXL", "RDMAV_"];
/// Exact environment variables worth reporting.
pub const ENV_NAMES: &[&str] = &[
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "VLLM_KV_TRANSFER_CONFIG",
];
/// Bytes read from one /proc file at most.
const MAX_PROC_FILE: u64 = 1 << 20;
/// Processes reported at most.
const MAX_PROCESSES: usize = 256;

/// Everything FabricCheck answers; `read_nixl_telemetry`: also read (and consume)
/// the serving processes' NIXL telemetry buffers.
pub fn check(sysfs_root: &Path, read_nixl_telemetry: bool) -> FabricCheckResponse {
    let rdma = crate::collect::rdma::RdmaCollector::discover(sysfs_root)
        .ok()
        .map(|mut c| c.sample());
    let mut r = FabricCheckResponse {
        rdma,
        libfabric: Some(servescope_fabric::libs::libfabric()),
        ucx: Some(servescope_fabric::libs::ucx()),
        processes: serving_processes(Path::new("/proc")),
        ..Default::default()
    };
    servescope_fabric::fill_check(&mut r);
    r.nixl = super::nixl_check::collect(&r.processes, Path::new("/proc"), read_nixl_telemetry);
    r
}

fn read_bounded(p: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(p)?
        .take(MAX_PROC_FILE)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Whether a command line is a serving process: vLLM, its engine core and workers,
/// Ray Serve replicas, SGLang, or anything that names NIXL — except servescope's
/// own fabric tools, which name NIXL without serving anything.
pub fn is_serving(cmdline: &str) -> bool {
    const MARKS: &[&str] = &[
        "vllm",
        "EngineCore",
        "ServeReplica",
        "RayWorkerWrapper",
        "sglang",
        "nixl",
        "servescope-sim",
    ];
    MARKS.iter().any(|m| cmdline.contains(m))
        && !is_own_fabric_tool(cmdline)
        && !is_launcher(cmdline)
}

/// Programs that start an engine and stay its parent (a shell running a script,
/// `timeout`, `sudo`): their command line names the engine (`bash run_vllm.sh`,
/// `timeout 3600 vllm serve …`) but the engine is their child, found on its own.
/// Taking the launcher for it would follow the wrong process and start the GPU
/// collector's burst for the launcher's whole life.
fn is_launcher(cmdline: &str) -> bool {
    const LAUNCHERS: &[&str] = &[
        "sh", "bash", "dash", "zsh", "ksh", "fish", "timeout", "sudo", "su", "nohup", "setsid",
        "tmux", "screen", "script", "strace", "xargs",
    ];
    let exe = cmdline.split_whitespace().next().unwrap_or_default();
    let name = Path::new(exe).file_name().and_then(|n| n.to_str());
    name.is_some_and(|n| LAUNCHERS.contains(&n))
}

/// `servescope fabric …` (e.g. `fabric probe --transport nixl`), and the NIXL driver
/// or telemetry reader an agent runs from its private `servescope-nixl-*` directory:
/// taking them for serving processes would list a probe's driver as an engine in
/// `fabric check`, follow its output as a startup log and put the GPU collector into
/// its cold-start burst for the length of every NIXL probe.
fn is_own_fabric_tool(cmdline: &str) -> bool {
    let mut args = cmdline.split_whitespace();
    let exe = args.next().unwrap_or_default();
    let cli = Path::new(exe)
        .file_name()
        .is_some_and(|n| n == "servescope")
        && args.next() == Some("fabric");
    cli || cmdline
        .split_whitespace()
        .any(|a| a.split('/').any(|c| c.starts_with("servescope-nixl-")))
}

/// Keeps the fabric-related variables of a NUL-separated environ block.
pub fn fabric_env(environ: &[u8]) -> BTreeMap<String, String> {
    environ
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            let keep = ENV_PREFIXES.iter().any(|p| k.starts_with(p)) || ENV_NAMES.contains(&k);
            keep.then(|| (k.to_string(), v.chars().take(4096).collect()))
        })
        .collect()
}

/// Distinct fabric library files in a /proc/<pid>/maps text.
pub fn fabric_libs(maps: &[u8]) -> Vec<String> {
    const LIBS: &[&str] = &["libfabric", "libucp", "libuct", "libnixl", "libefa"];
    let mut out: Vec<String> = String::from_utf8_lossy(maps)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| LIBS.iter().any(|l| p.contains(l)))
        .map(|p| p.chars().take(1024).collect())
        .collect();
    out.sort();
    out.dedup();
    out.truncate(64);
    out
}

/// Serving processes under `proc_root` with their fabric environment.
pub fn serving_processes(proc_root: &Path) -> Vec<ServingProcess> {
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = read_bounded(&e.path().join("cmdline")) else {
            continue;
        };
        let cmdline: String = String::from_utf8_lossy(&cmd)
            .replace('\0', " ")
            .trim()
            .chars()
            .take(1024)
            .collect();
        if !is_serving(&cmdline) {
            continue;
        }
        let (env, env_error) = match read_bounded(&e.path().join("environ")) {
            Ok(b) => (fabric_env(&b), String::new()),
            Err(err) => (BTreeMap::new(), err.to_string()),
        };
        let loaded_libs = read_bounded(&e.path().join("maps"))
            .map(|m| fabric_libs(&m))
            .unwrap_or_default();
        out.push(ServingProcess {
            pid,
            cmdline,
            env: env.into_iter().collect(),
            env_error,
            loaded_libs,
        });
        if out.len() >= MAX_PROCESSES {
            break;
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_fabric_variables() {
        let env = b"PATH=/bin\0FI_LOG_LEVEL=debug\0UCX_TLS=tcp\0HOME=/root\0CUDA_VISIBLE_DEVICES=0,1\0junk\0";
        let m = fabric_env(env);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m["FI_LOG_LEVEL"], "debug");
        assert_eq!(m["UCX_TLS"], "tcp");
    }

    #[test]
    fn lists_mapped_fabric_libraries_once() {
        let maps = b"7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libfabric.so.1.18.0
7f01-7f02 r--p 0 08:01 1 /usr/lib/x86_64-linux-gnu/libfabric.so.1.18.0
7f02-7f03 r-xp 0 08:01 2 /venv/lib/python3.12/site-packages/.nixl.mesonpy.libs/libfabric-abc.so.1
7f03-7f04 r-xp 0 08:01 3 /usr/lib/libc.so.6
7f04-7f05 rw-p 0 00:00 0
";
        let l = fabric_libs(maps);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l[1].contains("site-packages"));
    }

    #[test]
    fn servescope_fabric_tools_that_name_nixl_are_not_serving() {
        assert!(is_serving("python3 -m dynamo.nixl_worker"));
        assert!(is_serving(
            "/opt/venv/bin/python3 -m vllm.entrypoints.openai.api_server"
        ));
        assert!(is_serving("servescope sim --model servescope-sim"));
        assert!(!is_serving(
            "/usr/bin/servescope fabric probe --from a:1 --to b:2 --transport nixl --mem cuda"
        ));
        assert!(!is_serving(
            "/opt/venv/bin/python3 /tmp/servescope-nixl-77-0-1a2b/nixl_driver.py --max-bytes 1048576"
        ));
        assert!(!is_serving(
            "/tmp/servescope-nixl-77-3-9f/telemetry_reader /dev/shm/nixl"
        ));
        // A serving process whose arguments merely mention servescope stays serving.
        assert!(is_serving(
            "python3 -m vllm.entrypoints.openai.api_server --served-model-name servescope"
        ));
    }

    #[test]
    fn launchers_that_name_an_engine_are_not_serving() {
        assert!(!is_serving("bash bench/gpu_kv_nixl.sh"));
        assert!(!is_serving("timeout 210 bash bench/gpu_kv_nixl.sh"));
        assert!(!is_serving(
            "/bin/sh -c vllm serve /models/llama --port 8000"
        ));
        assert!(!is_serving(
            "/usr/bin/timeout 3600 vllm serve /models/llama"
        ));
        assert!(!is_serving(
            "sudo -E python3 -m vllm.entrypoints.openai.api_server"
        ));
        // The engine itself, however started.
        assert!(is_serving(
            "/usr/bin/python3 /usr/local/bin/vllm serve /models/llama"
        ));
        assert!(is_serving("vllm serve /models/llama --port 8000"));
        assert!(is_serving("ray::ServeReplica:default:LLMServer"));
    }

    #[test]
    fn finds_serving_processes_in_a_fake_proc_tree() {
        let d = tempfile::tempdir().expect("tempdir");
        let mk = |pid: u32, cmd: &[u8], env: Option<&[u8]>| {
            let p = d.path().join(pid.to_string());
            std::fs::create_dir_all(&p).expect("mkdir");
            std::fs::write(p.join("cmdline"), cmd).expect("cmdline");
            if let Some(env) = env {
                std::fs::write(p.join("environ"), env).expect("environ");
            }
        };
        mk(
            10,
            b"python3\0-m\0vllm.entrypoints.openai.api_server\0",
            Some(b"NIXL_LOG_LEVEL=DEBUG\0"),
        );
        mk(11, b"bash\0", Some(b"FI_LOG_LEVEL=debug\0"));
        mk(12, b"ray::ServeReplica:llm\0", None);
        std::fs::create_dir_all(d.path().join("self")).expect("self");
        let ps = serving_processes(d.path());
        assert_eq!(ps.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![10, 12]);
        assert_eq!(
            ps[0].env.get("NIXL_LOG_LEVEL").map(String::as_str),
            Some("DEBUG")
        );
        assert!(
            !ps[1].env_error.is_empty(),
            "unreadable environ is explained"
        );
    }
}
