//! The load client's HTTP: POST a JSON body and hand each body frame to the caller
//! with its arrival time, over pooled keep-alive HTTP/1.1 connections (hyper). The
//! caller decodes as bytes arrive; nothing buffers a whole response.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// Why a request failed at the HTTP level.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("connect/send failed: {0}")]
    Connect(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("stream cut: {0}")]
    StreamCut(String),
    #[error("response larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// A pooled HTTP client.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    /// No response headers by then: timeout.
    pub header_timeout: Duration,
    /// Silence between body frames longer than this: timeout.
    pub idle_timeout: Duration,
    pub max_response_bytes: usize,
}

/// Status and the response headers the load client cares about.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: StatusCode,
    pub request_id: Option<String>,
    /// When the response headers arrived.
    pub at: Instant,
}

impl HttpClient {
    pub fn new(max_connections: usize) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(10)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_connections.max(1))
            .pool_idle_timeout(Duration::from_secs(30))
            .build(conn);
        HttpClient {
            client,
            header_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
            max_response_bytes: 256 << 20,
        }
    }

    /// Posts `body` to `url`; `on_head` sees the status line, then `on_frame` each
    /// body frame with its arrival instant. `on_frame` returning false stops reading.
    pub async fn post_stream(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        mut on_head: impl FnMut(&Head),
        mut on_frame: impl FnMut(Instant, &[u8]) -> bool,
    ) -> Result<Head, HttpError> {
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| HttpError::Url {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        let mut req = Request::post(uri)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| HttpError::Url {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        for (k, v) in headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let resp = tokio::time::timeout(self.header_timeout, self.client.request(req))
            .await
            .map_err(|_| HttpError::Timeout(self.header_timeout))?
            .map_err(|e| HttpError::Connect(crate::error_chain(&e)))?;
        let head = Head {
            status: resp.status(),
            request_id: resp
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            at: Instant::now(),
        };
        on_head(&head);
        let mut body = resp.into_body();
        let mut total = 0usize;
        loop {
            let frame = tokio::time::timeout(self.idle_timeout, body.frame())
                .await
                .map_err(|_| HttpError::Timeout(self.idle_timeout))?;
            match frame {
                None => return Ok(head),
                Some(Err(e)) => return Err(HttpError::StreamCut(crate::error_chain(&e))),
                Some(Ok(f)) => {
                    let now = Instant::now();
                    if let Some(data) = f.data_ref() {
                        total += data.len();
                        if total > self.max_response_bytes {
                            return Err(HttpError::TooLarge {
                                limit: self.max_response_bytes,
                            });
                        }
                        if !on_frame(now, data) {
                            return Ok(head);
                        }
                    }
                }
            }
        }
    }

    /// GETs `url` and returns its status and whole body, within `timeout` (headers
    /// and body together). A body over `max_bytes` (declared or as it arrives) is
    /// [`HttpError::TooLarge`]; nothing beyond `max_bytes` is buffered.
    pub async fn get(
        &self,
        url: &str,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<(u16, Bytes), HttpError> {
        let bad_url = |message: String| HttpError::Url {
            url: url.to_string(),
            message,
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad_url(e.to_string()))?;
        let req = Request::get(uri)
            .body(Full::new(Bytes::new()))
            .map_err(|e| bad_url(e.to_string()))?;
        let fetch = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| HttpError::Connect(crate::error_chain(&e)))?;
            let status = resp.status().as_u16();
            let declared = resp
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max_bytes as u64) {
                return Err(HttpError::TooLarge { limit: max_bytes });
            }
            let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| HttpError::StreamCut(crate::error_chain(&e)))?;
                if let Some(data) = frame.data_ref() {
                    if buf.len() + data.len() > max_bytes {
                        return Err(HttpError::TooLarge { limit: max_bytes });
                    }
                    buf.extend_from_slice(data);
                }
            }
            Ok((status, Bytes::from(buf)))
        };
        tokio::time::timeout(timeout, fetch)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }
}
