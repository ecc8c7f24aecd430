//! Secrets the agent starts with: the bearer-token file, which must be private to
//! its owner, and the rule that keeps the token off the network in clear.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{AgentConfig, ConfigError};

/// Permission bits that let every user of the host read or write a file.
const OTHER_RW: u32 = 0o006;

/// Reads a token file: the first line, trimmed.
pub fn read_token(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Token {
        path: path.to_path_buf(),
        source,
    })?;
    let tok = text.lines().next().unwrap_or("").trim().to_string();
    if tok.is_empty() {
        return Err(ConfigError::EmptyToken(path.to_path_buf()));
    }
    Ok(tok)
}

/// Reads the agent's own token file, which every user of the host must not be
/// able to read or write (checked on the file a symbolic link points at).
pub fn read_private_token(path: &Path) -> Result<String, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Token {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & OTHER_RW != 0 {
        return Err(ConfigError::TokenExposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    read_token(path)
}

/// Refuses a token that /metrics would take over plain HTTP off loopback, unless
/// the operator accepted that with `--metrics-allow-plaintext-token`.
pub fn check_metrics_exposure(cfg: &AgentConfig) -> Result<(), ConfigError> {
    let Some(addr) = cfg.metrics_listen else {
        return Ok(());
    };
    if cfg.token.is_some()
        && cfg.tls.is_none()
        && !addr.ip().is_loopback()
        && !cfg.metrics_allow_plaintext_token
    {
        return Err(ConfigError::PlaintextTokenOffLoopback { addr });
    }
    Ok(())
}
