//! Raw HTTP/1.0 client for the simulator's tests: arrival times of SSE events as
//! the socket delivers them.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// POSTs `body` to `path` with `x-request-id: rid`; returns (status line, data events
/// with their arrival instants, send instant, whole response text).
pub async fn post_id(
    addr: std::net::SocketAddr,
    path: &str,
    rid: &str,
    body: &str,
) -> (String, Vec<(Instant, String)>, Instant, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.0\r\nhost: x\r\ncontent-type: application/json\r\nx-request-id: {rid}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let sent = Instant::now();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut scanned = 0;
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        while let Some(i) = text[scanned..].find("\n\n") {
            let ev = text[scanned..scanned + i].to_string();
            if let Some(pos) = ev.find("data: ") {
                events.push((now, ev[pos + 6..].to_string()));
            }
            scanned += i + 2;
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.lines().next().unwrap_or("").to_string();
    (status, events, sent, text)
}
