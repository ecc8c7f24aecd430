//! UCX transport of the fabric probe engine. libucp.so.0 is loaded at run time
//! (loader.rs) with bindings generated once from the Debian 1.13.1 headers (sys.rs,
//! scripts/gen_ucx_bindings.sh). endpoint.rs: context/worker/endpoint setup and
//! connecting to the peer; probe.rs: the `ProbeEndpoint` impl; mem.rs: host or CUDA
//! buffer; protocol.rs: the in-band protocol (driver and responder); io.rs: posting
//! operations; req.rs: request completion bounded by peer_timeout/cancel; lanes.rs:
//! transport truth (ucp_ep_query ≥ 1.14, else ucp_ep_print_info); perftest_parse.rs:
//! the ucx_perftest oracle; check.rs: contents verification messages; proto_info.rs: UCX's protocol selection tables parsed.

mod capture;
mod check;
mod endpoint;
pub mod findings;
mod io;
mod lanes;
mod loader;
mod mem;
pub mod perftest_parse;
mod probe;
pub mod proto_info;
mod proto_table;
mod protocol;
mod req;
pub mod sys;

pub use endpoint::{UcxEndpoint, UcxOptions};
pub use perftest_parse::{parse_perftest, PerftestResult};

use crate::error::FabricError;

/// The loaded library: (path, version), or why UCX is unavailable.
pub fn library() -> Result<(String, String), FabricError> {
    library_at(None)
}

/// The library at `path` (None: the default one): (path, version), or why not.
pub fn library_at(path: Option<&str>) -> Result<(String, String), FabricError> {
    loader::ucp_at(path).map(|u| (u.path.clone(), u.version.clone()))
}
