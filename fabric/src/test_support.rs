//! Test support (the `test-support` feature, enabled from dev-dependencies only):
//! what the NIXL tests of this crate and of the CLI share.

use std::path::PathBuf;

/// The NIXL venv's Python (`SERVESCOPE_NIXL_PYTHON`, else `target/nixl-venv`), or
/// `None` with a printed skip reason.
pub fn nixl_python() -> Option<PathBuf> {
    let p = std::env::var_os("SERVESCOPE_NIXL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/nixl-venv/bin/python")
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
