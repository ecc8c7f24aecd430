//! Test support shared by the workspace's crates (the `test-support` feature,
//! enabled only from dev-dependencies): a deterministic generator for property
//! tests and a message filler that sets every field with presence.

mod fill;
mod rng;

pub use fill::every_optional_scalar;
pub use rng::Rng;
