//! The Serve status the dashboard answers to `GET /api/serve/applications/`
//! (Ray's `ServeInstanceDetails`), reduced to what a deployment step needs: per
//! application its status and message, per deployment its status, message and
//! replica counts, and the HTTP proxy's options.
//!
//! Tolerant of fields Ray adds (they are ignored), strict about the ones used: the
//! `applications` map must be there and every application's `status` must be one of
//! Ray's [`AppStatus`] values, or parsing fails naming what was wrong. Deployment
//! statuses are shown, not acted on, so a value this code does not know is kept as
//! [`DeploymentStatus::Other`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// An application's status (Ray's `ApplicationStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppStatus {
    NotStarted,
    Deploying,
    Running,
    DeployFailed,
    Deleting,
    Unhealthy,
}

impl AppStatus {
    /// Ray's spelling, e.g. `DEPLOY_FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::NotStarted => "NOT_STARTED",
            AppStatus::Deploying => "DEPLOYING",
            AppStatus::Running => "RUNNING",
            AppStatus::DeployFailed => "DEPLOY_FAILED",
            AppStatus::Deleting => "DELETING",
            AppStatus::Unhealthy => "UNHEALTHY",
        }
    }

    /// A status that waiting will not turn into RUNNING.
    pub fn is_failed(self) -> bool {
        matches!(self, AppStatus::DeployFailed | AppStatus::Unhealthy)
    }
}

impl fmt::Display for AppStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deployment's status (Ray's `DeploymentStatus`); unknown values are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeploymentStatus {
    Updating,
    Healthy,
    Unhealthy,
    DeployFailed,
    Upscaling,
    Downscaling,
    Other(String),
}

impl DeploymentStatus {
    fn parse(s: &str) -> Self {
        match s {
            "UPDATING" => DeploymentStatus::Updating,
            "HEALTHY" => DeploymentStatus::Healthy,
            "UNHEALTHY" => DeploymentStatus::Unhealthy,
            "DEPLOY_FAILED" => DeploymentStatus::DeployFailed,
            "UPSCALING" => DeploymentStatus::Upscaling,
            "DOWNSCALING" => DeploymentStatus::Downscaling,
            other => DeploymentStatus::Other(other.to_string()),
        }
    }

    /// Ray's spelling, e.g. `HEALTHY`.
    pub fn as_str(&self) -> &str {
        match self {
            DeploymentStatus::Updating => "UPDATING",
            DeploymentStatus::Healthy => "HEALTHY",
            DeploymentStatus::Unhealthy => "UNHEALTHY",
            DeploymentStatus::DeployFailed => "DEPLOY_FAILED",
            DeploymentStatus::Upscaling => "UPSCALING",
            DeploymentStatus::Downscaling => "DOWNSCALING",
            DeploymentStatus::Other(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for DeploymentStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(DeploymentStatus::parse(&String::deserialize(d)?))
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One deployment of an application.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeploymentState {
    pub status: DeploymentStatus,
    /// Ray's explanation (empty when it has none), e.g. a replica's traceback.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub message: String,
    /// Replicas Ray aims for, when it says.
    #[serde(default)]
    pub target_num_replicas: Option<u64>,
    /// Replicas Ray lists (in any state).
    #[serde(default, rename = "replicas", deserialize_with = "count_list")]
    pub replica_count: usize,
}

/// One application.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppState {
    pub status: AppStatus,
    /// Ray's explanation (empty when it has none), e.g. an import error.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub message: String,
    #[serde(default)]
    pub route_prefix: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub deployments: BTreeMap<String, DeploymentState>,
}

impl AppState {
    /// The application's message and every deployment's non-empty message, for an
    /// error: what Ray says went wrong.
    pub fn messages(&self) -> String {
        let mut parts = Vec::new();
        if !self.message.trim().is_empty() {
            parts.push(self.message.trim().to_string());
        }
        for (name, d) in &self.deployments {
            if !d.message.trim().is_empty() {
                parts.push(format!(
                    "deployment {name} {}: {}",
                    d.status,
                    d.message.trim()
                ));
            }
        }
        if parts.is_empty() {
            "Ray gave no message".to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// Serve's HTTP proxy options, when Serve is running.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HttpOptions {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

/// What `GET /api/serve/applications/` says: every application by name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServeStatus {
    pub applications: BTreeMap<String, AppState>,
    /// Absent when Serve is not running.
    #[serde(default)]
    pub http_options: Option<HttpOptions>,
}

impl ServeStatus {
    /// Parses the dashboard's JSON.
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    pub fn app(&self, name: &str) -> Option<&AppState> {
        self.applications.get(name)
    }
}

/// One line: `app STATUS [deployment STATUS replicas/target, ...] (message)`; each
/// application separated by `; `; `no applications` when there are none.
impl fmt::Display for ServeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applications.is_empty() {
            return f.write_str("no applications");
        }
        for (i, (name, app)) in self.applications.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name} {}", app.status)?;
            if !app.deployments.is_empty() {
                f.write_str(" [")?;
                for (j, (dn, d)) in app.deployments.iter().enumerate() {
                    if j > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{dn} {} {}", d.status, d.replica_count)?;
                    if let Some(t) = d.target_num_replicas {
                        write!(f, "/{t}")?;
                    }
                }
                f.write_str("]")?;
            }
            let msg = app.message.trim();
            if !msg.is_empty() {
                write!(f, " ({})", crate::orchestration::ray::clip(msg, 300))?;
            }
        }
        Ok(())
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn count_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(Option::<Vec<serde::de::IgnoredAny>>::deserialize(d)?.map_or(0, |v| v.len()))
}
