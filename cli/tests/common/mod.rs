//! Helpers of the CLI's process tests.
#![allow(dead_code)]

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
