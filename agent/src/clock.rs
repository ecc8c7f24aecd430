//! The agent's one clock: nanoseconds since the Unix epoch on this host (the wire's
//! clock, shared with the coordinator through `servescope-proto`).

pub use servescope_proto::now_ns;
