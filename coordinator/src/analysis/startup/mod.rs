//! Replica startup attribution: where the minutes between "scale from
//! zero" and the first answer go.
//!
//! * [`phase`]: the phase model every source produces ([`Phase`], [`Timeline`]).
//! * [`patterns`]: versioned wording tables for vLLM 0.10 → 0.33 startup lines,
//!   in the [`template`] syntax.
//! * [`logparse`]: the log source (vLLM / Ray Serve LLM terminal output).
//! * [`nvml`]: phases inferred from NVML samples, per GPU ([`gpus`]), merged into a
//!   waterfall where the logs have no line for them ([`nvml_merge`]).
//! * [`compare`]: per-model tables from many parsed logs (the report layer draws
//!   them as a page).

pub mod agent_logs;
mod assemble;
pub use assemble::SERVER_UP_NS;

pub mod compare;
mod cpu_runner;
mod error;
pub mod gpus;
mod hits;
pub mod line;
pub mod logparse;
pub mod nvml;
pub mod nvml_check;
mod nvml_memory;
pub mod nvml_merge;
mod nvml_signal;
mod options;
pub mod patterns;
pub mod phase;
mod ranks;
pub mod template;
pub mod unplaced;

pub use error::StartupError;
pub use logparse::{parse_file, parse_reader, parse_str, LogParse, LogParser};
pub use options::{parse_utc_offset, ParseOptions};
pub use phase::{Phase, PhaseKind, Source, Timeline};
