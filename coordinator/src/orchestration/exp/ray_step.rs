//! A deployment's Ray Serve step: the Serve config (JSON file next to the experiment
//! file) applied through the dashboard's REST API and awaited until every
//! application in it is RUNNING; teardown deletes the applications.

use std::path::Path;
use std::time::Duration;

use super::file::RayServe;
use crate::orchestration::ray::{app_names, RayServeClient};

const POLL: Duration = Duration::from_secs(1);

/// Applies the config and waits for RUNNING.
pub async fn apply(rs: &RayServe, dir: &Path, timeout: Duration) -> Result<(), String> {
    let path = dir.join(&rs.config);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let client = RayServeClient::new(&rs.dashboard).map_err(|e| e.to_string())?;
    let apps = app_names(&config).map_err(|e| e.to_string())?;
    client.apply(&config).await.map_err(|e| e.to_string())?;
    client
        .wait_running(&apps, timeout, POLL, |_| {})
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Deletes every Serve application.
pub async fn delete(rs: &RayServe) -> Result<(), String> {
    let client = RayServeClient::new(&rs.dashboard).map_err(|e| e.to_string())?;
    client
        .delete(Duration::from_secs(120), POLL)
        .await
        .map_err(|e| e.to_string())
}
