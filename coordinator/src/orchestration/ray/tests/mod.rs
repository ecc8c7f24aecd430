//! The REST contract against an in-process HTTP double (a raw tokio listener):
//! method, path, headers and body of each call, status parsing, failure paths.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

mod apply;
mod delete;
mod status;
mod wait;

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
