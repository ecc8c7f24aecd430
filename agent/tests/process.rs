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

/// Starts the agent with `args`; its `listening` line, then SIGTERM and a clean exit.
fn serves_then_stops(args: &[&str], dir: &Path) -> String {
    let mut child = bin()
        .args(args)
        .args(["--no-kmsg", "--no-startup-watch", "--nvml-lib"])
        .arg(dir.join("missing.so"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    line
}

#[test]
fn refuses_a_token_file_every_user_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let tok = private_token(dir.path());
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = bin()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--token-file",
        ])
        .arg(&tok)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&tok.display().to_string()), "{e}");
    assert!(e.contains("mode 0644"), "{e}");
    assert!(e.contains("chmod 600"), "{e}");
    // The same file made private: the agent starts.
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tok_s = tok.display().to_string();
    let line = serves_then_stops(
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--token-file",
            &tok_s,
        ],
        dir.path(),
    );
    assert!(line.starts_with("listening grpc=127.0.0.1:"), "{line}");
}

#[test]
fn refuses_a_plaintext_token_on_metrics_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let tok = private_token(dir.path());
    let tok_s = tok.display().to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "0.0.0.0:0",
        "--token-file",
        &tok_s,
    ];
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("--metrics-allow-plaintext-token"), "{e}");
    assert!(e.contains("0.0.0.0:0"), "{e}");
    // The operator's explicit choice: served on every interface.
    let mut allowed = args.to_vec();
    allowed.push("--metrics-allow-plaintext-token");
    let line = serves_then_stops(&allowed, dir.path());
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
    let mut child = bin()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--no-kmsg",
            "--token-file",
        ])
        .arg(&tok)
        .arg("--nvml-lib")
        .arg(dir.path().join("missing.so"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening grpc=127.0.0.1:"), "{line}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "clean exit on SIGTERM");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("gpu: unavailable"), "{e}");
}
