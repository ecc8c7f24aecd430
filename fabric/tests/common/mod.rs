//! Helpers shared by the fabric crate's NIXL tests.
#![allow(dead_code)]

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
