//! The OTLP/gRPC `TraceService` server: [`Collector`] (bounded state, usable
//! without a network) and [`Receiver`] (the tonic server on an address).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use servescope_proto::otlp::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use servescope_proto::otlp::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::analysis::otlp::engines::{self, Sender};
use crate::analysis::otlp::startup::{self, SpanAgg};
use crate::analysis::otlp::{
    attrs, requests, Collected, OtlpError, RequestSpan, ServiceKey, Stats, REQUEST_SPAN,
};

/// How long [`Receiver::shutdown`] waits for in-flight exports.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The OTLP/gRPC default address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4317";

/// Bounds on what the receiver accepts and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest gRPC message decoded (bigger ones are refused with `OUT_OF_RANGE`).
    pub max_message_bytes: usize,
    /// Spans kept (request spans plus startup spans aggregated); the rest are dropped.
    pub max_spans: u64,
    /// Distinct (service/host, span name, process) startup aggregates.
    pub max_names: usize,
    /// Attributes kept per phase or request span.
    pub max_attrs: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_bytes: 16 << 20,
            max_spans: 1_000_000,
            max_names: 4096,
            max_attrs: 64,
        }
    }
}

#[derive(Default)]
struct State {
    startup: BTreeMap<ServiceKey, Sender>,
    names: usize,
    requests: Vec<RequestSpan>,
    stats: Stats,
}

impl State {
    fn kept(&self) -> u64 {
        self.stats
            .request_spans
            .saturating_add(self.stats.startup_spans)
    }
}

/// Collected spans, shared by the gRPC service and its callers.
pub struct Collector {
    limits: Limits,
    state: Mutex<State>,
}

impl Collector {
    pub fn new(limits: Limits) -> Collector {
        Collector {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the counters inconsistent enough to matter.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one export; `peer` (the sender's IP) stands in for the host when the
    /// resource names none. Returns the spans rejected (dropped or invalid).
    pub fn ingest(&self, req: &ExportTraceServiceRequest, peer: Option<&str>) -> u64 {
        let lim = self.limits;
        let mut st = self.lock();
        st.stats.exports = st.stats.exports.saturating_add(1);
        let mut rejected = 0u64;
        for rs in &req.resource_spans {
            let resource = rs.resource.as_ref();
            let key = attrs::service_key(resource, peer);
            let process = attrs::process(resource);
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                st.stats.spans = st.stats.spans.saturating_add(1);
                if st.kept() >= lim.max_spans {
                    st.stats.dropped = st.stats.dropped.saturating_add(1);
                    rejected += 1;
                    continue;
                }
                if span.name == REQUEST_SPAN {
                    let r = requests::request_span(&key, resource, span, lim.max_attrs);
                    st.requests.push(r);
                    st.stats.request_spans += 1;
                    continue;
                }
                let (Some(s), Some(e)) = (
                    attrs::ns(span.start_time_unix_nano),
                    attrs::ns(span.end_time_unix_nano),
                ) else {
                    st.stats.invalid = st.stats.invalid.saturating_add(1);
                    rejected += 1;
                    continue;
                };
                if e < s {
                    st.stats.invalid = st.stats.invalid.saturating_add(1);
                    rejected += 1;
                    continue;
                }
                let mut name = span.name.clone();
                attrs::truncate(&mut name, attrs::MAX_VALUE_CHARS);
                let span_attrs = || attrs::to_map(&span.attributes, lim.max_attrs, &[]);
                let names = st.names;
                let sender = st.startup.entry(key.clone()).or_default();
                let agg_key = (name, process.clone());
                if let Some(agg) = sender.aggs.get_mut(&agg_key) {
                    agg.add(s, e, span_attrs);
                } else if names < lim.max_names {
                    sender
                        .aggs
                        .insert(agg_key, SpanAgg::new(s, e, span_attrs()));
                    st.names += 1;
                } else {
                    st.stats.dropped = st.stats.dropped.saturating_add(1);
                    rejected += 1;
                    continue;
                }
                if let Some(sender) = st.startup.get_mut(&key) {
                    sender.add_trace(attrs::id_hex(&span.trace_id));
                    if sender.peer.is_none() {
                        sender.peer = peer.map(str::to_string);
                    }
                }
                st.stats.startup_spans += 1;
            }
        }
        st.startup.retain(|_, g| !g.aggs.is_empty());
        rejected
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.lock().stats
    }

    /// What was collected so far (timelines built now), leaving it in place.
    pub fn snapshot(&self) -> Collected {
        let st = self.lock();
        collected(&st.startup, st.requests.clone(), st.stats)
    }

    /// What was collected so far; the collector starts over (counters included).
    pub fn take(&self) -> Collected {
        let st = std::mem::take(&mut *self.lock());
        collected(&st.startup, st.requests, st.stats)
    }
}

/// One startup timeline per engine ([`engines::group`]); its first request is the
/// earliest `llm_request` span any of its processes sent.
fn collected(
    startup: &BTreeMap<ServiceKey, Sender>,
    requests: Vec<RequestSpan>,
    stats: Stats,
) -> Collected {
    let startups = engines::group(startup)
        .iter()
        .map(|e| {
            let first = requests
                .iter()
                .filter(|r| {
                    e.members
                        .iter()
                        .any(|m| r.service == m.service && r.host == m.host)
                })
                .filter(|r| r.start_ns.is_some())
                .min_by_key(|r| r.start_ns);
            startup::build(&e.key, &e.aggs, first)
        })
        .collect();
    Collected {
        startups,
        requests,
        stats,
    }
}

struct Service {
    collector: Arc<Collector>,
}

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let peer = request.remote_addr().map(|a| a.ip().to_string());
        let rejected = self.collector.ingest(request.get_ref(), peer.as_deref());
        let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: "span limit reached or span without valid times".into(),
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

/// A running OTLP/gRPC trace receiver.
pub struct Receiver {
    addr: SocketAddr,
    collector: Arc<Collector>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Receiver {
    /// Binds `addr` (port 0 for any) and serves `TraceService/Export` on it.
    pub async fn start(addr: SocketAddr, limits: Limits) -> Result<Receiver, OtlpError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| OtlpError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| OtlpError::Bind { addr, source })?;
        let collector = Arc::new(Collector::new(limits));
        let svc = TraceServiceServer::new(Service {
            collector: Arc::clone(&collector),
        })
        .max_decoding_message_size(limits.max_message_bytes);
        let (stop, mut stopped) = watch::channel(false);
        let router = tonic::transport::Server::builder().add_service(svc);
        let task = tokio::spawn(async move {
            let incoming = TcpListenerStream::new(listener);
            router
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(Receiver {
            addr,
            collector,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared collector (for `snapshot`, `take`, `stats`).
    pub fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    pub fn snapshot(&self) -> Collected {
        self.collector.snapshot()
    }

    pub fn take(&self) -> Collected {
        self.collector.take()
    }

    pub fn stats(&self) -> Stats {
        self.collector.stats()
    }

    /// Stops serving and returns what was collected. In-flight exports get up to
    /// [`SHUTDOWN_GRACE`] to finish; a sender that holds its connection longer is
    /// cut off, and what was collected is returned all the same.
    pub async fn shutdown(self) -> Result<Collected, OtlpError> {
        let _ = self.stop.send(true);
        let mut task = self.task;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(self.collector.take()),
            Ok(Ok(Err(e))) => Err(OtlpError::Serve(e.to_string())),
            Ok(Err(e)) => Err(OtlpError::Serve(e.to_string())),
            Err(_) => {
                task.abort();
                Ok(self.collector.take())
            }
        }
    }
}
