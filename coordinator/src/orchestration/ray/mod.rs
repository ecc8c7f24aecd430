//! Ray Serve deployments through the Ray dashboard's REST API (default
//! `http://HEAD:8265`), for an experiment's deployment step and its teardown:
//!
//! - [`RayServeClient::apply`]: `PUT /api/serve/applications/` with a declarative
//!   Serve config (Ray's `ServeDeploySchema`, as JSON; YAML must be converted by the
//!   caller);
//! - [`RayServeClient::status`]: `GET /api/serve/applications/`, parsed into
//!   [`ServeStatus`];
//! - [`RayServeClient::wait_running`]: polls until the applications are RUNNING,
//!   failing at once on DEPLOY_FAILED / UNHEALTHY with Ray's message;
//! - [`RayServeClient::delete`]: `DELETE /api/serve/applications/` (Serve shuts
//!   down), then polls until no application is left.
//!
//! Every response body is bounded and every call has a timeout; errors name the
//! method, the URL and, for an unexpected answer, the HTTP status and Ray's text.

mod status;
#[cfg(test)]
mod tests;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

pub use status::{
    AppState, AppStatus, DeploymentState, DeploymentStatus, HttpOptions, ServeStatus,
};

/// The dashboard's Serve applications endpoint.
pub const APPLICATIONS_PATH: &str = "/api/serve/applications/";

/// Ray's default dashboard port.
pub const DEFAULT_DASHBOARD_PORT: u16 = 8265;

/// Why a Ray Serve REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum RayError {
    #[error("invalid Ray dashboard URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("invalid Serve config: {0}")]
    Config(String),
    #[error("{method} {url}: {message}")]
    Connect {
        method: Method,
        url: String,
        message: String,
    },
    #[error("{method} {url}: no complete response within {timeout:?}")]
    Timeout {
        method: Method,
        url: String,
        timeout: Duration,
    },
    #[error("{method} {url}: response body larger than {limit} bytes")]
    TooLarge {
        method: Method,
        url: String,
        limit: usize,
    },
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        method: Method,
        url: String,
        status: u16,
        /// The start of Ray's answer (lossy UTF-8, clipped).
        body: String,
    },
    #[error("GET {url}: unexpected Serve status JSON: {message}")]
    Parse { url: String, message: String },
    #[error("Ray Serve application {app:?} is {status}: {message}")]
    AppFailed {
        app: String,
        status: AppStatus,
        /// Ray's messages: the application's and its deployments'.
        message: String,
    },
    #[error("gave up after {waited:?} waiting for {goal}; last status: {last}")]
    WaitTimeout {
        waited: Duration,
        goal: String,
        last: String,
    },
}

impl RayError {
    /// Worth polling again: the dashboard was unreachable, slow, or answered 5xx
    /// (it says 503 while the Serve controller is unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            RayError::Connect { .. } | RayError::Timeout { .. } => true,
            RayError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A client for one Ray cluster's dashboard.
#[derive(Clone)]
pub struct RayServeClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Limit for a `GET` (headers and body together).
    pub request_timeout: Duration,
    /// Limit for `PUT` and `DELETE`: the dashboard answers them only once Serve has
    /// started (PUT) or shut down (DELETE), which takes a while on a small head.
    pub mutate_timeout: Duration,
    /// Larger response bodies are [`RayError::TooLarge`]; nothing beyond is read.
    pub max_response_bytes: usize,
    /// Sent as `Authorization: Bearer …` when set (Ray's token authentication).
    pub auth_token: Option<String>,
}

impl std::fmt::Debug for RayServeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RayServeClient")
            .field("base", &self.base)
            .field("request_timeout", &self.request_timeout)
            .field("mutate_timeout", &self.mutate_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl RayServeClient {
    /// `dashboard` is the dashboard's base URL, e.g. `http://head:8265` (plain HTTP;
    /// a path prefix is kept, a trailing `/` dropped). A bare `host:port` gets
    /// `http://`.
    pub fn new(dashboard: &str) -> Result<Self, RayError> {
        let trimmed = dashboard.trim();
        let base = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let bad = |message: &str| RayError::Url {
            url: dashboard.to_string(),
            message: message.to_string(),
        };
        let uri: Uri = base
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// is supported"));
        }
        if uri.authority().is_none_or(|a| a.host().is_empty()) {
            return Err(bad("no host"));
        }
        let auth = uri.authority().map_or("", |a| a.as_str());
        let has_port = auth
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.ends_with(']'));
        if has_port && uri.port_u16().is_none() {
            return Err(bad("invalid port"));
        }
        if uri.query().is_some() {
            return Err(bad("a query string is not allowed"));
        }
        let base = base.trim_end_matches('/').to_string();
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(10)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(2)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(conn);
        Ok(RayServeClient {
            base,
            client,
            request_timeout: Duration::from_secs(30),
            mutate_timeout: Duration::from_secs(180),
            max_response_bytes: 16 << 20,
            auth_token: None,
        })
    }

    /// The dashboard's base URL, normalized.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The full URL of the applications endpoint.
    pub fn applications_url(&self) -> String {
        format!("{}{APPLICATIONS_PATH}", self.base)
    }

    /// `PUT /api/serve/applications/` with `config` (Ray's declarative multi-app
    /// config: an object with an `applications` list). Ray answers once Serve is
    /// started and the applications are accepted, not when they run: follow with
    /// [`wait_running`](Self::wait_running). A config Ray rejects is
    /// [`RayError::Status`] with its reason.
    pub async fn apply(&self, config: &serde_json::Value) -> Result<(), RayError> {
        app_names(config)?;
        let body = serde_json::to_vec(config).map_err(|e| RayError::Config(e.to_string()))?;
        self.call(Method::PUT, Some(Bytes::from(body)), self.mutate_timeout)
            .await?;
        Ok(())
    }

    /// `GET /api/serve/applications/`: every application's status.
    pub async fn status(&self) -> Result<ServeStatus, RayError> {
        let body = self.call(Method::GET, None, self.request_timeout).await?;
        ServeStatus::from_json(&body).map_err(|e| RayError::Parse {
            url: self.applications_url(),
            message: e.to_string(),
        })
    }

    /// Polls [`status`](Self::status) every `poll` until each of `apps` (every
    /// application listed, when `apps` is empty, and at least one) is RUNNING, and
    /// returns that status. `on_progress` sees every status read. An application in
    /// DEPLOY_FAILED or UNHEALTHY is [`RayError::AppFailed`] with Ray's messages;
    /// transient errors (see [`RayError::is_transient`]) are retried; past `timeout`
    /// it is [`RayError::WaitTimeout`] with the last status (or error) seen.
    pub async fn wait_running<S: AsRef<str>>(
        &self,
        apps: &[S],
        timeout: Duration,
        poll: Duration,
        mut on_progress: impl FnMut(&ServeStatus),
    ) -> Result<ServeStatus, RayError> {
        let names: Vec<&str> = apps.iter().map(AsRef::as_ref).collect();
        let goal = if names.is_empty() {
            "every Serve application to be RUNNING".to_string()
        } else {
            format!("Serve application(s) {} to be RUNNING", names.join(", "))
        };
        self.poll_until(timeout, poll, goal, |st| {
            on_progress(st);
            let wanted: Vec<&str> = if names.is_empty() {
                st.applications.keys().map(String::as_str).collect()
            } else {
                names.clone()
            };
            let mut all = !wanted.is_empty();
            for name in wanted {
                match st.app(name) {
                    Some(app) if app.status.is_failed() => {
                        return Err(RayError::AppFailed {
                            app: name.to_string(),
                            status: app.status,
                            message: app.messages(),
                        })
                    }
                    Some(app) if app.status == AppStatus::Running => {}
                    _ => all = false,
                }
            }
            Ok(all)
        })
        .await
    }

    /// Teardown: `DELETE /api/serve/applications/` (Ray shuts Serve down), then polls
    /// every `poll` until no application is listed, within `timeout` overall.
    pub async fn delete(&self, timeout: Duration, poll: Duration) -> Result<(), RayError> {
        let start = Instant::now();
        self.call(Method::DELETE, None, self.mutate_timeout.min(timeout))
            .await?;
        let left = timeout.saturating_sub(start.elapsed());
        self.poll_until(
            left,
            poll,
            "every Serve application to be gone".into(),
            |st| Ok(st.applications.is_empty()),
        )
        .await?;
        Ok(())
    }

    /// Reads the status every `poll` until `done` says true (or errs), within
    /// `timeout`; transient read errors are retried.
    async fn poll_until(
        &self,
        timeout: Duration,
        poll: Duration,
        goal: String,
        mut done: impl FnMut(&ServeStatus) -> Result<bool, RayError>,
    ) -> Result<ServeStatus, RayError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut last = "nothing read yet".to_string();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RayError::WaitTimeout {
                    waited: start.elapsed(),
                    goal,
                    last,
                });
            }
            match tokio::time::timeout(left, self.status()).await {
                Err(_) => last = format!("GET {} still pending", self.applications_url()),
                Ok(Ok(st)) => {
                    if done(&st)? {
                        return Ok(st);
                    }
                    last = st.to_string();
                }
                Ok(Err(e)) if e.is_transient() => last = format!("error: {e}"),
                Ok(Err(e)) => return Err(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(poll.min(left)).await;
        }
    }

    /// One request to the applications endpoint; a 2xx answer's body, else
    /// [`RayError::Status`].
    async fn call(
        &self,
        method: Method,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, RayError> {
        let url = self.applications_url();
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| RayError::Url {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, "servescope");
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        if let Some(t) = &self.auth_token {
            let v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| RayError::Url {
                url: url.clone(),
                message: "the auth token is not a valid header value".into(),
            })?;
            builder = builder.header(AUTHORIZATION, v);
        }
        let req = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| RayError::Url {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let limit = self.max_response_bytes;
        let m = method.clone();
        let u = url.clone();
        let exchange = async move {
            let connect = |e: String| RayError::Connect {
                method: m.clone(),
                url: u.clone(),
                message: e,
            };
            let too_large = || RayError::TooLarge {
                method: m.clone(),
                url: u.clone(),
                limit,
            };
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| connect(crate::text::error_chain(&e)))?;
            let status = resp.status();
            let declared = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            // An error's text is read only so far as it is worth showing.
            let cap = if status.is_success() {
                limit
            } else {
                limit.min(64 << 10)
            };
            if status.is_success() && declared.is_some_and(|n| n > limit as u64) {
                return Err(too_large());
            }
            let mut buf = Vec::new();
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    connect(format!(
                        "response body cut: {}",
                        crate::text::error_chain(&e)
                    ))
                })?;
                if let Some(data) = frame.data_ref() {
                    if buf.len() + data.len() > cap {
                        if status.is_success() {
                            return Err(too_large());
                        }
                        buf.extend_from_slice(&data[..cap - buf.len()]);
                        break;
                    }
                    buf.extend_from_slice(data);
                }
            }
            if !status.is_success() {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim();
                return Err(RayError::Status {
                    method: m.clone(),
                    url: u.clone(),
                    status: status.as_u16(),
                    body: if text.is_empty() {
                        status.canonical_reason().unwrap_or("no body").to_string()
                    } else {
                        clip(text, 2000)
                    },
                });
            }
            Ok(Bytes::from(buf))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| RayError::Timeout {
                method,
                url,
                timeout,
            })?
    }
}

/// The application names in a Serve config (`default` for one without a name, as
/// Ray does); checks the shape Ray needs: an object with an `applications` list of
/// objects, names unique.
pub fn app_names(config: &serde_json::Value) -> Result<Vec<String>, RayError> {
    let bad = |m: String| RayError::Config(m);
    let obj = config
        .as_object()
        .ok_or_else(|| bad("the config must be a JSON object".into()))?;
    let apps = obj
        .get("applications")
        .and_then(|a| a.as_array())
        .ok_or_else(|| bad("the config needs an \"applications\" list".into()))?;
    let mut names = Vec::with_capacity(apps.len());
    for (i, app) in apps.iter().enumerate() {
        let app = app
            .as_object()
            .ok_or_else(|| bad(format!("applications[{i}] is not an object")))?;
        let name = match app.get("name") {
            None => "default",
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(_) => return Err(bad(format!("applications[{i}].name is not a string"))),
        };
        if names.iter().any(|n| n == name) {
            return Err(bad(format!("application name {name:?} appears twice")));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// `s` cut to at most `max` characters, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}
