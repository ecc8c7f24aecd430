//! Hand-written additions to the generated types, shared by the agent, the
//! coordinator and the CLI: the one clock ([`now_ns`]) with its UTC calendar, and
//! the sample kinds with their names ([`kind`]).

pub mod clock;
pub mod kind;

pub use clock::{civil_from_days, now_ns, year_of_ns};
