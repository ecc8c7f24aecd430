//! Helpers of the CLI's process tests.
#![allow(dead_code)]

use std::process::{Child, Command};

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
