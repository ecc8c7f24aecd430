//! The `servescope-agent` binary as a process: refuses unsafe configurations with a
//! clear message, and serves when configured.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servescope-agent"))
}

/// A token file readable by its owner only.
fn private_token(dir: &Path) -> PathBuf {
    let tok = dir.join("token");
    std::fs::write(&tok, "t0k\n").unwrap();
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
    tok
}

/// The flags of an agent with gRPC on a free loopback port, `/metrics` on
/// `metrics` (or `off`) and the token in `tok`.
fn loopback<'a>(metrics: &'a str, tok: &'a str) -> [&'a str; 6] {
    [
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        metrics,
        "--token-file",
        tok,
    ]
}

/// Starts the agent with `args` (no kmsg reader, no NVML, the startup watcher off
/// unless `startup_watch`); its `listening` line and, after SIGTERM and a clean
/// exit, its stderr.
fn serves_then_stops(args: &[&str], dir: &Path, startup_watch: bool) -> (String, String) {
    let mut child = bin()
        .args(args)
        .args((!startup_watch).then_some("--no-startup-watch"))
        .args(["--no-kmsg", "--nvml-lib"])
        .arg(dir.join("missing.so"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // SIGTERM through the shell's `kill` (no unsafe in the agent's tests).
    let st = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(st.success(), "kill -TERM {}", child.id());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "clean exit on SIGTERM: {stderr}");
    (line, stderr)
}

#[test]
fn refuses_a_token_file_every_user_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let tok = private_token(dir.path());
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tok_s = tok.display().to_string();
    let out = bin().args(loopback("off", &tok_s)).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&tok.display().to_string()), "{e}");
    assert!(e.contains("mode 0644"), "{e}");
    assert!(e.contains("chmod 600"), "{e}");
    // The same file made private: the agent starts.
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (line, _) = serves_then_stops(&loopback("off", &tok_s), dir.path(), false);
    assert!(line.starts_with("listening grpc=127.0.0.1:"), "{line}");
}

#[test]
fn refuses_a_plaintext_token_on_metrics_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let tok = private_token(dir.path());
    let tok_s = tok.display().to_string();
    let args = loopback("0.0.0.0:0", &tok_s);
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("--metrics-allow-plaintext-token"), "{e}");
    assert!(e.contains("0.0.0.0:0"), "{e}");
    // The operator's explicit choice: served on every interface.
    let mut allowed = args.to_vec();
    allowed.push("--metrics-allow-plaintext-token");
    let (line, _) = serves_then_stops(&allowed, dir.path(), false);
    assert!(line.contains("metrics=0.0.0.0:"), "{line}");
}

#[test]
fn refuses_anonymous_off_loopback_and_missing_token() {
    let out = bin()
        .args(["--insecure-no-auth", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("not loopback"), "{e}");

    let out = bin().args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"));

    let out = bin()
        .args(["--token-file", "/nonexistent/token"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/token"));
}

#[test]
fn serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let tok = private_token(dir.path());
    let tok_s = tok.display().to_string();
    let args = loopback("127.0.0.1:0", &tok_s);
    let (line, e) = serves_then_stops(&args, dir.path(), true);
    assert!(line.starts_with("listening grpc=127.0.0.1:"), "{line}");
    assert!(e.contains("gpu: unavailable"), "{e}");
}
