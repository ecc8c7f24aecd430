//! The REST contract against an in-process HTTP double (a raw tokio listener):
//! method, path, headers and body of each call, status parsing, failure paths.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A request the double received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the double answers.
#[derive(Clone)]
enum Reply {
    Json(u16, String),
    Text(u16, String),
    /// Headers, then silence.
    Hang,
}

/// Answers the i-th request with `script(i, &request)`; one connection per request.
struct Double {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn double(script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Double {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (seen2, script) = (Arc::clone(&seen), Arc::new(script));
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (seen, script) = (Arc::clone(&seen2), Arc::clone(&script));
            tokio::spawn(async move {
                let Some(req) = read_request(&mut sock).await else {
                    return;
                };
                let i = {
                    let mut s = seen.lock().unwrap();
                    s.push(req.clone());
                    s.len() - 1
                };
                let (status, ctype, body) = match script(i, &req) {
                    Reply::Json(s, b) => (s, "application/json", b),
                    Reply::Text(s, b) => (s, "text/plain", b),
                    Reply::Hang => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{")
                            .await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Double { url, seen }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

/// A trimmed `GET /api/serve/applications/` answer of Ray 2.60, with one
/// application `app` in `status` and its deployment `Forward` in `dstatus`.
fn details(status: &str, dstatus: &str, message: &str) -> String {
    json!({
        "controller_info": {"node_id": "n1", "node_ip": "127.0.0.1", "actor_id": "a", "log_file_path": "/x"},
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": 8123, "root_path": "", "request_timeout_s": null, "keep_alive_timeout_s": 90},
        "grpc_options": {"port": 9000, "grpc_servicer_functions": []},
        "proxies": {},
        "deploy_mode": "MULTI_APP",
        "applications": {
            "app": {
                "name": "app",
                "route_prefix": "/",
                "docs_path": null,
                "status": status,
                "message": message,
                "last_deployed_time_s": 1.7e9,
                "deployed_app_config": {"name": "app", "import_path": "forward:app"},
                "source": "declarative",
                "deployments": {
                    "Forward": {
                        "name": "Forward",
                        "status": dstatus,
                        "status_trigger": "CONFIG_UPDATE_STARTED",
                        "message": if dstatus == "HEALTHY" { "" } else { "replica died" },
                        "deployment_config": {"name": "Forward", "num_replicas": 1},
                        "target_num_replicas": 1,
                        "required_resources": {"CPU": 0},
                        "replicas": [{"node_id": "n1", "replica_id": "r1", "state": "RUNNING"}],
                        "a_field_from_a_later_ray": {"x": 1}
                    }
                },
                "external_scaler_enabled": false
            }
        },
        "target_capacity": null
    })
    .to_string()
}

/// Ray's answer when Serve is not running (`get_empty_schema_dict`).
fn empty() -> String {
    json!({"controller_info": {}, "proxies": {}, "applications": {}, "target_capacity": null})
        .to_string()
}

fn config() -> serde_json::Value {
    json!({
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": 8123},
        "applications": [{
            "name": "app",
            "route_prefix": "/",
            "import_path": "forward:app",
            "args": {"upstream": "http://127.0.0.1:1"}
        }]
    })
}

fn client(d: &Double) -> RayServeClient {
    let mut c = RayServeClient::new(&d.url).unwrap();
    c.request_timeout = Duration::from_secs(5);
    c.mutate_timeout = Duration::from_secs(5);
    c
}

const MS: Duration = Duration::from_millis(10);

#[tokio::test]
async fn apply_puts_the_config_as_json() {
    let d = double(|_, _| Reply::Text(200, String::new())).await;
    client(&d).apply(&config()).await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].path, "/api/serve/applications/");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert!(seen[0].header("authorization").is_none());
    // Not taken for a browser (Ray redacts or refuses those).
    assert!(!seen[0].header("user-agent").unwrap().starts_with("Mozilla"));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body, config());
}

#[tokio::test]
async fn apply_sends_the_token_and_keeps_a_path_prefix() {
    let d = double(|_, _| Reply::Text(200, String::new())).await;
    let mut c = RayServeClient::new(&format!("{}/ray/", d.url)).unwrap();
    c.auth_token = Some("s3cret".into());
    assert!(!format!("{c:?}").contains("s3cret"));
    c.apply(&config()).await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/ray/api/serve/applications/");
    assert_eq!(seen[0].header("authorization"), Some("Bearer s3cret"));
}

#[tokio::test]
async fn a_rejected_config_names_url_status_and_rays_reason() {
    let d = double(|_, _| {
        Reply::Text(
            400,
            "1 validation error for ServeDeploySchema\napplications.0.import_path\n  Field required"
                .into(),
        )
    })
    .await;
    let e = client(&d).apply(&config()).await.unwrap_err();
    let RayError::Status { status, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*status, 400);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("PUT {}/api/serve/applications/: HTTP 400:", d.url)),
        "{msg}"
    );
    assert!(
        msg.contains("import_path") && msg.contains("Field required"),
        "{msg}"
    );
    assert!(!e.is_transient());
}

#[tokio::test]
async fn a_malformed_config_is_refused_before_any_request() {
    let d = double(|_, _| Reply::Text(200, String::new())).await;
    let c = client(&d);
    for (bad, why) in [
        (json!([1]), "JSON object"),
        (json!({"apps": []}), "\"applications\" list"),
        (json!({"applications": [1]}), "applications[0]"),
        (
            json!({"applications": [{"name": 3}]}),
            "name is not a string",
        ),
        (
            json!({"applications": [{"name": "a"}, {"name": "a"}]}),
            "appears twice",
        ),
        (
            json!({"applications": [{}, {}]}),
            "\"default\" appears twice",
        ),
    ] {
        let e = c.apply(&bad).await.unwrap_err();
        assert!(
            matches!(e, RayError::Config(_)) && e.to_string().contains(why),
            "{e}"
        );
    }
    assert!(d.seen.lock().unwrap().is_empty());
    assert_eq!(app_names(&config()).unwrap(), ["app"]);
    assert_eq!(
        app_names(&json!({"applications": [{}]})).unwrap(),
        ["default"]
    );
}

#[tokio::test]
async fn status_reads_applications_deployments_and_messages() {
    let d = double(|_, _| Reply::Json(200, details("DEPLOYING", "UPDATING", "starting"))).await;
    let st = client(&d).status().await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/api/serve/applications/")
    );
    assert!(seen[0].body.is_empty());
    let app = st.app("app").unwrap();
    assert_eq!(app.status, AppStatus::Deploying);
    assert_eq!(app.message, "starting");
    assert_eq!(app.route_prefix.as_deref(), Some("/"));
    let dep = &app.deployments["Forward"];
    assert_eq!(dep.status, DeploymentStatus::Updating);
    assert_eq!(dep.message, "replica died");
    assert_eq!((dep.replica_count, dep.target_num_replicas), (1, Some(1)));
    assert_eq!(st.http_options.as_ref().unwrap().port, Some(8123));
    assert_eq!(
        st.to_string(),
        "app DEPLOYING [Forward UPDATING 1/1] (starting)"
    );
    assert_eq!(
        app.messages(),
        "starting; deployment Forward UPDATING: replica died"
    );
}

#[test]
fn every_ray_status_spelling_parses() {
    for (s, want) in [
        ("NOT_STARTED", AppStatus::NotStarted),
        ("DEPLOYING", AppStatus::Deploying),
        ("RUNNING", AppStatus::Running),
        ("DEPLOY_FAILED", AppStatus::DeployFailed),
        ("DELETING", AppStatus::Deleting),
        ("UNHEALTHY", AppStatus::Unhealthy),
    ] {
        let st = ServeStatus::from_json(details(s, "HEALTHY", "").as_bytes()).unwrap();
        assert_eq!(st.app("app").unwrap().status, want);
        assert_eq!(want.as_str(), s);
    }
    for s in [
        "UPDATING",
        "HEALTHY",
        "UNHEALTHY",
        "DEPLOY_FAILED",
        "UPSCALING",
        "DOWNSCALING",
    ] {
        let st = ServeStatus::from_json(details("RUNNING", s, "").as_bytes()).unwrap();
        let d = &st.app("app").unwrap().deployments["Forward"].status;
        assert_eq!(d.as_str(), s);
        assert!(!matches!(d, DeploymentStatus::Other(_)));
    }
    // A deployment status from a later Ray is kept, not an error: it is only shown.
    let st = ServeStatus::from_json(details("RUNNING", "AUTOSCALING", "").as_bytes()).unwrap();
    assert_eq!(
        st.app("app").unwrap().deployments["Forward"].status,
        DeploymentStatus::Other("AUTOSCALING".into())
    );
}

#[tokio::test]
async fn status_is_strict_about_what_it_uses() {
    let no_apps = json!({"controller_info": {}}).to_string();
    let unknown = details("SLEEPING", "HEALTHY", "");
    let no_status = json!({"applications": {"app": {"message": "x"}}}).to_string();
    for (body, why) in [
        (no_apps, "missing field `applications`"),
        (unknown, "unknown variant `SLEEPING`"),
        (no_status, "missing field `status`"),
        ("<html>".to_string(), "expected value"),
    ] {
        let d = double(move |_, _| Reply::Json(200, body.clone())).await;
        let e = client(&d).status().await.unwrap_err();
        assert!(matches!(e, RayError::Parse { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(why) && msg.contains(&d.url), "{msg}");
    }
    // Serve not running: no applications, no http_options; nulls are tolerated.
    let d = double(|_, _| Reply::Json(200, empty())).await;
    let st = client(&d).status().await.unwrap();
    assert!(st.applications.is_empty() && st.http_options.is_none());
    assert_eq!(st.to_string(), "no applications");
    let nulls =
        json!({"applications": {"a": {"status": "RUNNING", "message": null, "deployments": null}}});
    let st = ServeStatus::from_json(nulls.to_string().as_bytes()).unwrap();
    assert_eq!(st.app("a").unwrap().message, "");
}

#[tokio::test]
async fn wait_running_polls_until_running_and_reports_progress() {
    let d = double(|i, _| match i {
        0 => Reply::Json(200, empty()),
        1 => Reply::Json(200, details("NOT_STARTED", "UPDATING", "")),
        2 => Reply::Json(200, details("DEPLOYING", "UPDATING", "")),
        _ => Reply::Json(200, details("RUNNING", "HEALTHY", "")),
    })
    .await;
    let mut seen = Vec::new();
    let st = client(&d)
        .wait_running(&["app"], Duration::from_secs(5), MS, |s| {
            seen.push(s.to_string())
        })
        .await
        .unwrap();
    assert_eq!(st.app("app").unwrap().status, AppStatus::Running);
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0], "no applications");
    assert!(seen[3].starts_with("app RUNNING"), "{seen:?}");
    // Empty `apps`: every listed application, and at least one.
    let d = double(|i, _| match i {
        0 => Reply::Json(200, empty()),
        _ => Reply::Json(200, details("RUNNING", "HEALTHY", "")),
    })
    .await;
    let mut n = 0;
    client(&d)
        .wait_running(&[] as &[&str], Duration::from_secs(5), MS, |_| n += 1)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_failed_deploy_is_an_error_with_rays_message() {
    for status in ["DEPLOY_FAILED", "UNHEALTHY"] {
        let d = double(move |i, _| match i {
            0 => Reply::Json(200, details("DEPLOYING", "UPDATING", "")),
            _ => Reply::Json(
                200,
                details(
                    status,
                    "DEPLOY_FAILED",
                    "ModuleNotFoundError: No module named 'forward'",
                ),
            ),
        })
        .await;
        let e = client(&d)
            .wait_running(&["app"], Duration::from_secs(5), MS, |_| {})
            .await
            .unwrap_err();
        let RayError::AppFailed { app, status: s, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!((app.as_str(), s.as_str()), ("app", status));
        let msg = e.to_string();
        assert!(msg.contains("No module named 'forward'"), "{msg}");
        assert!(
            msg.contains("deployment Forward DEPLOY_FAILED: replica died"),
            "{msg}"
        );
        assert_eq!(d.seen.lock().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn wait_running_times_out_saying_the_last_status() {
    let d = double(|_, _| Reply::Json(200, details("DEPLOYING", "UPDATING", "pending"))).await;
    let e = client(&d)
        .wait_running(&["app"], Duration::from_millis(200), MS, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, RayError::WaitTimeout { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("Serve application(s) app to be RUNNING"),
        "{msg}"
    );
    assert!(
        msg.contains("last status: app DEPLOYING [Forward UPDATING 1/1] (pending)"),
        "{msg}"
    );
    // Another application RUNNING does not count for the one waited for.
    let d = double(|_, _| Reply::Json(200, details("RUNNING", "HEALTHY", ""))).await;
    let e = client(&d)
        .wait_running(&["other"], Duration::from_millis(100), MS, |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last status: app RUNNING"), "{e}");
}

#[tokio::test]
async fn wait_running_rides_out_a_busy_dashboard_but_not_a_client_error() {
    let d = double(|i, _| match i {
        0 => Reply::Text(503, "Failed to get a response from the controller.".into()),
        _ => Reply::Json(200, details("RUNNING", "HEALTHY", "")),
    })
    .await;
    client(&d)
        .wait_running(&["app"], Duration::from_secs(5), MS, |_| {})
        .await
        .unwrap();
    let d = double(|_, _| Reply::Text(503, "The GCS may be down".into())).await;
    let e = client(&d)
        .wait_running(&["app"], Duration::from_millis(100), MS, |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last status: error: GET"), "{e}");
    assert!(
        e.to_string().contains("HTTP 503: The GCS may be down"),
        "{e}"
    );
    let d = double(|_, _| Reply::Text(404, "404: Not Found".into())).await;
    let e = client(&d)
        .wait_running(&["app"], Duration::from_secs(5), MS, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, RayError::Status { status: 404, .. }), "{e:?}");
}

#[tokio::test]
async fn delete_sends_delete_then_waits_until_gone() {
    let d = double(|i, _| match i {
        0 => Reply::Text(200, String::new()),
        1 => Reply::Json(200, details("DELETING", "HEALTHY", "")),
        _ => Reply::Json(200, empty()),
    })
    .await;
    client(&d).delete(Duration::from_secs(5), MS).await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    let calls: Vec<_> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("DELETE", "/api/serve/applications/"),
            ("GET", "/api/serve/applications/"),
            ("GET", "/api/serve/applications/")
        ]
    );
    assert!(seen[0].body.is_empty());
    // Still there at the deadline: a timeout naming what was left.
    let d = double(|i, _| match i {
        0 => Reply::Text(200, String::new()),
        _ => Reply::Json(200, details("DELETING", "HEALTHY", "")),
    })
    .await;
    let e = client(&d)
        .delete(Duration::from_millis(200), MS)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("every Serve application to be gone"), "{msg}");
    assert!(msg.contains("last status: app DELETING"), "{msg}");
    // A refused DELETE is reported as such.
    let d = double(|_, _| Reply::Text(500, "boom".into())).await;
    let e = client(&d)
        .delete(Duration::from_secs(5), MS)
        .await
        .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "DELETE {}/api/serve/applications/: HTTP 500: boom",
            d.url
        )),
        "{e}"
    );
}

#[tokio::test]
async fn bodies_are_bounded_and_calls_time_out() {
    let d = double(|_, _| Reply::Json(200, details("RUNNING", "HEALTHY", ""))).await;
    let mut c = client(&d);
    c.max_response_bytes = 100;
    let e = c.status().await.unwrap_err();
    assert!(matches!(e, RayError::TooLarge { limit: 100, .. }), "{e:?}");
    assert!(e.to_string().contains(&d.url), "{e}");
    // An error body is clipped, not refused.
    let d = double(|_, _| Reply::Text(400, "x".repeat(100_000))).await;
    let e = client(&d).apply(&config()).await.unwrap_err();
    assert!(matches!(e, RayError::Status { status: 400, .. }), "{e:?}");
    assert!(e.to_string().len() < 2200 && e.to_string().ends_with('…'));

    let d = double(|_, _| Reply::Hang).await;
    let mut c = client(&d);
    c.request_timeout = Duration::from_millis(200);
    let e = c.status().await.unwrap_err();
    assert!(
        matches!(e, RayError::Timeout { .. }) && e.is_transient(),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "GET {}/api/serve/applications/: no complete response within 200ms",
            d.url
        )
    );
}

#[tokio::test]
async fn an_unreachable_dashboard_names_the_url() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = RayServeClient::new(&format!("127.0.0.1:{port}")).unwrap();
    assert_eq!(c.base_url(), format!("http://127.0.0.1:{port}"));
    let e = c.status().await.unwrap_err();
    assert!(
        matches!(e, RayError::Connect { .. }) && e.is_transient(),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with(&format!(
            "GET http://127.0.0.1:{port}/api/serve/applications/: "
        )),
        "{e}"
    );
}

#[test]
fn dashboard_urls_are_checked() {
    for bad in [
        "https://head:8265",
        "http://",
        "http://h:1/?x=1",
        "http://h:notaport",
    ] {
        let e = RayServeClient::new(bad).unwrap_err();
        assert!(matches!(e, RayError::Url { .. }), "{bad}: {e:?}");
    }
    let c = RayServeClient::new("http://head:8265/").unwrap();
    assert_eq!(
        c.applications_url(),
        "http://head:8265/api/serve/applications/"
    );
}
