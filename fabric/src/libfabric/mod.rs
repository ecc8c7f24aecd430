//! libfabric transport of the fabric probe engine, loaded at run time.
//!
//! * [`loader`]: `dlopen` of `libfabric.so.1` (EFA installer copy first) and the
//!   few real exports, the versioned ones at `FABRIC_1.3`.
//! * `ops`: the header's inline dispatchers (`fi_domain`, `fi_tsend`, …) over
//!   the bindgen layouts of [`sys`] (generated once from the 1.17 headers by
//!   `scripts/gen_libfabric_bindings.sh`).
//! * [`providers`]: what `fi_info` lists.
//! * [`LibfabricEndpoint`]: a [`ProbeEndpoint`](crate::ProbeEndpoint) over
//!   one provider (RDM, tagged messages, RMA when offered).
//! * [`pingpong_parse`]: parser of `fi_pingpong` output, the cross-check oracle.

mod check;
mod consts;
mod driver;
mod endpoint;
mod info;
pub mod loader;
mod memory;
mod ops;
pub mod pingpong_parse;
mod progress;
mod proto;
pub mod providers;
mod responder;
mod slots;
#[rustfmt::skip]
pub mod sys;

pub use endpoint::LibfabricEndpoint;
pub use pingpong_parse::{parse_fi_pingpong, PingpongParseError, PingpongRow};
pub use providers::{has_provider, library, providers, LibraryInfo, ProviderInfo};
