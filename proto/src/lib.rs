//! The servescope gRPC API. Generated from `proto/servescope/agent/v1/agent.proto`
//! at build time by protox + tonic-prost-build (no system protoc).

pub mod agent {
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("servescope.agent.v1");
    }
}

pub use agent::v1;
