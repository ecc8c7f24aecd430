//! servescope coordinator library: talks to agents (connect, clock offsets,
//! telemetry sessions that resume by sequence number), keeps what they send in an
//! embedded SQLite store, and turns stored samples into points, rates and exports.
//! No command-line parsing here: the `servescope` CLI is a thin layer over this.
//!
//! Four layers, each using only those listed before it:
//! * [`store`]: the schema and typed records; the only place with SQL.
//! * [`analysis`]: pure analysis over stored or parsed data (diagnosis rules, P/D
//!   attribution, startup inference, experiment analyses, format parsers).
//! * [`report`]: every HTML page and export.
//! * [`orchestration`]: what drives processes and I/O (agent sessions, recording,
//!   scraping, the OTLP receiver, Ray, fabric probes, `pd run`, `exp run`, load).
//!
//! [`text`] holds small formatting helpers any layer may use.

pub mod analysis;
pub mod orchestration;
pub mod report;
pub mod store;
pub mod text;

#[cfg(test)]
mod layers;

pub use orchestration::connect::{AgentClient, AgentEndpoint, ClientCert};
pub use store::Store;
