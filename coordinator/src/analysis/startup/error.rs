//! Errors of reading, parsing and writing startup logs and pages.

/// Startup errors.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("reading {name}: {source}")]
    Read {
        name: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("bad UTC offset {0:?} (expected +HH:MM or -HH:MM)")]
    BadOffset(String),
}
