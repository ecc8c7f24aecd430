//! Test support shared by the workspace's crates (the `test-support` feature,
//! enabled only from dev-dependencies): a deterministic generator for property
//! tests, a message filler that sets every field with presence, and the
//! recording tests' check that each sample was stored or counted lost once.

mod fill;
mod rng;
mod seqs;

pub use fill::every_optional_scalar;
pub use rng::Rng;
pub use seqs::assert_each_sequence_once;
