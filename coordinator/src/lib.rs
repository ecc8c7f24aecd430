//! servescope coordinator library: talks to agents (connect, clock offsets,
//! telemetry sessions that resume by sequence number), keeps what they send in an
//! embedded SQLite store, and turns stored samples into points, rates and exports.
//! No command-line parsing here: the `servescope` CLI is a thin layer over this.

pub mod clock;
pub mod connect;
pub mod diagnose;
pub mod engine;
pub mod exp;
pub mod export;
pub mod fabric;
pub mod finding;
pub mod load;
pub mod otlp;
pub mod pd;
pub mod points;
pub mod rates;
pub mod ray;
pub mod record;
pub mod report;
pub mod session;
pub mod startup;
pub mod store;
pub mod summary;
pub mod text;

pub use connect::{AgentClient, AgentEndpoint, ClientCert};
pub use store::Store;
