//! The client-side load engine against OpenAI-compatible endpoints: when requests
//! are sent (`schedule`), how streamed answers are read, and the metrics computed
//! from what arrived.

pub mod chunk;
pub mod guidellm;
pub mod http;
pub mod metrics;
pub mod request;
pub mod runner;
pub mod schedule;
pub mod sse;
pub mod stats;
pub mod vllm_json;
pub mod workload;
