//! Helpers of the CLI's process tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output};

/// The `servescope` binary, with backtraces off so error output is what users see.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_servescope"));
    c.env_remove("RUST_BACKTRACE");
    c
}

/// A child process killed when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the `servescope` binary with `args`, asserts that it fails, and returns what
/// it wrote on stderr.
pub fn failure(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The agent binary beside `servescope` (cargo builds every workspace binary for
/// tests), if built.
pub fn agent_bin() -> Option<std::path::PathBuf> {
    let p =
        std::path::Path::new(env!("CARGO_BIN_EXE_servescope")).with_file_name("servescope-agent");
    p.exists().then_some(p)
}

/// An agent on a free loopback port with this token file, ready when its port
/// accepts; its address is the second field.
pub fn loopback_agent(token_file: &std::path::Path) -> Option<(Kill, String)> {
    loopback_agent_with(token_file, &[])
}

/// [`loopback_agent`] with extra agent flags.
pub fn loopback_agent_with(token_file: &std::path::Path, extra: &[&str]) -> Option<(Kill, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    agent_on(token_file, &format!("127.0.0.1:{port}"), extra)
}

/// An agent listening on `listen` (HOST:PORT) with extra flags, ready when its
/// port accepts.
pub fn agent_on(
    token_file: &std::path::Path,
    listen: &str,
    extra: &[&str],
) -> Option<(Kill, String)> {
    let listen = listen.to_string();
    // The agent refuses a token file every user can read.
    std::fs::set_permissions(
        token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .ok()?;
    let child = Command::new(agent_bin()?)
        .args([
            "--listen",
            &listen,
            "--metrics-listen",
            "off",
            "--token-file",
        ])
        .arg(token_file)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let k = Kill(child);
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        if t0.elapsed() > std::time::Duration::from_secs(10) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Some((k, listen))
}

/// Runs `cmd` to the end: its output, stdout and stderr (lossy UTF-8).
pub fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, so, se)
}

/// Runs `cmd`, asserts that it succeeds (showing both streams if not), and returns
/// what it wrote on stdout.
pub fn success(cmd: &mut Command) -> String {
    let (out, so, se) = run(cmd);
    assert!(out.status.success(), "{so}\n{se}");
    so
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Appends `fabric probe --from <from> --to <to> --no-store --token-file <tok>` to
/// `cmd`.
pub fn fabric_probe<'c>(cmd: &'c mut Command, tok: &Path, from: &str, to: &str) -> &'c mut Command {
    cmd.args([
        "fabric",
        "probe",
        "--from",
        from,
        "--to",
        to,
        "--no-store",
        "--token-file",
    ])
    .arg(tok)
}

/// A finished command's stdout then stderr (lossy UTF-8), one line apart.
pub fn both_streams(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Starts a simulated P/D cluster (`cmd`: `servescope sim --pd-cluster …` as the
/// caller built it) and reads the "ROLE URL" lines it prints first: the proxy,
/// prefill and decode URLs by role.
pub fn pd_cluster(cmd: &mut Command) -> (Kill, std::collections::HashMap<String, String>) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let sim = Kill(child);
    let mut urls = std::collections::HashMap::new();
    for line in BufReader::new(out).lines().take(3) {
        let line = line.unwrap();
        let (role, url) = line.split_once(' ').unwrap();
        urls.insert(role.to_string(), url.to_string());
    }
    (sim, urls)
}

/// The NIXL venv's Python (`SERVESCOPE_NIXL_PYTHON`, else `target/nixl-venv`), or
/// `None` with a printed skip reason.
pub fn nixl_python() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("SERVESCOPE_NIXL_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/nixl-venv/bin/python")
        });
    if !p.exists() {
        println!(
            "SKIP: no NIXL venv at {} (run scripts/nixl_venv.sh)",
            p.display()
        );
        return None;
    }
    Some(p)
}
