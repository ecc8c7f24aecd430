//! The serving engines' own metrics: vLLM's Prometheus `/metrics` (directly, or as
//! Ray Serve re-exports it), scraped before, during and after a run.
//!
//! * [`prom`] parses an exposition (Prometheus text 0.0.4 or OpenMetrics 1.0),
//!   bounded and never failing, with lookups by vLLM's canonical names;
//! * [`window`] turns two expositions of one endpoint into deltas and histograms
//!   over the run's window ([`EngineWindow`]), flagging engine restarts;
//!
//! The scrape loop that fetches them over HTTP is in the orchestration layer; the
//! store keeps the raw bodies (`Store::save_scrapes`).

mod lex;
mod pfloat;
pub mod prom;
pub mod window;

pub use prom::{canonical, parse, Exposition, Family, LineError, MetricKind, ParseLimits, Sample};
pub use window::{counter_delta, hist_delta, Delta, EngineWindow, Hist, HistStats};

#[cfg(test)]
mod tests;
