//! The `servescope-agent` binary as a process: refuses unsafe configurations with a
//! clear message, and serves when configured.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servescope-agent"))
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
    let tok = dir.path().join("token");
    std::fs::write(&tok, "t0k\n").unwrap();
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
