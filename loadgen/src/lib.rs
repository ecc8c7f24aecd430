//! The client-side load engine against OpenAI-compatible endpoints: when requests
//! are sent ([`schedule`]), how streamed answers are read ([`http`], [`sse`],
//! [`chunk`]), what is sent ([`workload`]), and the metrics computed from what
//! arrived ([`metrics`], [`stats`]). The coordinator runs it (and stores what it
//! records); an agent runs it as one shard of a distributed load.

pub mod chunk;
pub mod error_body;
pub mod http;
pub mod metrics;
pub mod request;
pub mod schedule;
pub mod shard;
pub mod sse;
pub mod stats;
pub mod workload;

/// ns since the Unix epoch on this host, now (the wire's clock).
pub use servescope_proto::now_ns;

/// An error and its sources, joined with ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
