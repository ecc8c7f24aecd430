//! Pure analysis over stored or parsed data: the diagnosis rule registry and its
//! findings, rates and points, run summaries, P/D attribution, startup inference,
//! experiment analyses, fabric judges, and parsers of engine metrics, OTLP spans,
//! engine logs and load-tool results. Uses only [`crate::store`] (and
//! [`crate::text`]); never the report or orchestration layers.

pub mod diagnose;
pub mod engine;
pub mod exp;
pub mod fabric;
pub mod finding;
pub mod load;
pub mod otlp;
pub mod pd;
pub mod points;
pub mod rates;
pub mod startup;
pub mod summary;
