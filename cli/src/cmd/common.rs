//! Flags shared by commands that talk to agents or the store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use servescope_coordinator::{AgentEndpoint, ClientCert, Store};

#[derive(clap::Args, Debug, Clone)]
pub struct AgentFlags {
    /// Agent address HOST:PORT (repeat for several agents)
    #[arg(long = "agent", required = true)]
    pub agents: Vec<String>,
    /// File holding the agents' bearer token
    #[arg(long, env = "SERVESCOPE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate to verify agents' TLS certificates (turns TLS on)
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Server name to verify in the agents' certificates
    #[arg(long)]
    pub tls_domain: Option<String>,
    /// PEM certificate to present to agents that require client certificates
    /// (agent --tls-client-ca); with --tls-client-key
    #[arg(long, requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM private key of --tls-client-cert
    #[arg(long, requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
}

impl AgentFlags {
    pub fn endpoints(&self) -> anyhow::Result<Vec<AgentEndpoint>> {
        self.endpoints_for(&self.agents)
    }

    /// Endpoints for `agents` with these flags' token and TLS settings.
    pub fn endpoints_for(&self, agents: &[String]) -> anyhow::Result<Vec<AgentEndpoint>> {
        let token = match &self.token_file {
            Some(p) => Some(
                servescope_agent::config::read_token(p)
                    .with_context(|| format!("reading token file {}", p.display()))?,
            ),
            None => None,
        };
        let ca = match &self.tls_ca {
            Some(p) => {
                Some(std::fs::read(p).with_context(|| format!("reading CA file {}", p.display()))?)
            }
            None => None,
        };
        let read = |p: &Path, what: &str| {
            std::fs::read(p).with_context(|| format!("reading {what} {}", p.display()))
        };
        let client = match (&self.tls_client_cert, &self.tls_client_key) {
            (Some(c), Some(k)) => Some(ClientCert {
                cert_pem: read(c, "client certificate")?,
                key_pem: read(k, "client key")?,
            }),
            (None, None) => None,
            _ => anyhow::bail!("--tls-client-cert and --tls-client-key go together"),
        };
        Ok(agents
            .iter()
            .map(|a| {
                let mut e = AgentEndpoint::new(a.clone(), token.clone());
                e.tls_ca_pem = ca.clone();
                e.tls_domain = self.tls_domain.clone();
                e.tls_client = client.clone();
                e
            })
            .collect())
    }
}

/// A command that is its subcommands only.
#[derive(clap::Args, Debug)]
pub struct Subcommands<S: clap::Subcommand> {
    #[command(subcommand)]
    pub command: S,
}

/// A view of the store: the store flag and `--json`.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreView {
    #[command(flatten)]
    pub db: DbFlag,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DbFlag {
    /// The store (SQLite file)
    #[arg(long, env = "SERVESCOPE_DB", default_value = "servescope.db")]
    pub db: PathBuf,
}

impl DbFlag {
    /// The store's path, which must exist: opening a missing store would create
    /// an empty one.
    pub fn existing(&self) -> anyhow::Result<&Path> {
        if !self.db.exists() {
            anyhow::bail!(
                "no store at {} (record something first, or pass --db)",
                self.db.display()
            );
        }
        Ok(&self.db)
    }

    /// Opens the store, which must exist.
    pub fn open_existing(&self) -> anyhow::Result<Store> {
        Ok(Store::open(self.existing()?)?)
    }
}

/// Parses "60s", "500ms", "2m", "1h", or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 60s, 500ms, 2m"))?;
    let mult = match unit {
        "ms" => 1e-3,
        "s" | "" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        u => {
            return Err(format!(
                "invalid duration unit {u:?} in {s:?}: use ms, s, m or h"
            ))
        }
    };
    let secs = v * mult;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A table cell: the value, or `-` when there is none.
pub fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

pub fn fmt_bytes(b: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b;
    let mut i = 0;
    while v.abs() >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", units[i])
    } else {
        format!("{v:.1} {}", units[i])
    }
}

pub fn fmt_ns(ns: i64) -> String {
    let a = ns.unsigned_abs() as f64;
    if a >= 1e9 {
        format!("{:.3} s", ns as f64 / 1e9)
    } else if a >= 1e6 {
        format!("{:.3} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

/// Sample counts per kind as `kind n, kind n, …` (in the map's order).
pub fn fmt_kinds(counts: &std::collections::BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn units() {
        assert_eq!(fmt_bytes(1_500_000_000.0), "1.5 GB");
        assert_eq!(fmt_ns(1_500_000), "1.500 ms");
    }
}
