//! The servescope gRPC API. Generated from `proto/servescope/agent/v1/*.proto`
//! (the `Agent` service in `agent.proto`, its types split by concern into
//! `common`, `telemetry`, `probe` and `shard`; one package, so one Rust module
//! [`v1`]) at build time by protox + tonic-prost-build (no system protoc).
//!
//! [`ext`] holds hand-written additions shared by every crate: the clock
//! ([`now_ns`]) and the sample kinds with their names.
//!
//! [`otlp`] holds the OpenTelemetry protocol types (traces only: collector
//! `TraceService`, trace, common, resource), generated from the vendored
//! opentelemetry-proto v1.9.0 files.

pub mod agent {
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("servescope.agent.v1");
    }
}

pub use agent::v1;

pub mod ext;
pub use ext::now_ns;
pub mod catalog;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

/// `opentelemetry.proto.*`: the module tree mirrors the proto packages, as the
/// generated code refers to sibling packages by relative paths.
pub mod opentelemetry {
    pub mod proto {
        pub mod common {
            pub mod v1 {
                #![allow(clippy::all, missing_docs, rustdoc::all)]
                tonic::include_proto!("opentelemetry.proto.common.v1");
            }
        }
        pub mod resource {
            pub mod v1 {
                #![allow(clippy::all, missing_docs, rustdoc::all)]
                tonic::include_proto!("opentelemetry.proto.resource.v1");
            }
        }
        pub mod trace {
            pub mod v1 {
                #![allow(clippy::all, missing_docs, rustdoc::all)]
                tonic::include_proto!("opentelemetry.proto.trace.v1");
            }
        }
        pub mod collector {
            pub mod trace {
                pub mod v1 {
                    #![allow(clippy::all, missing_docs, rustdoc::all)]
                    tonic::include_proto!("opentelemetry.proto.collector.trace.v1");
                }
            }
        }
    }
}

/// OTLP (OpenTelemetry protocol) trace types: `otlp::collector::trace::v1`
/// (`TraceService`, `ExportTraceServiceRequest`), `otlp::trace::v1::Span`, …
pub use opentelemetry::proto as otlp;
