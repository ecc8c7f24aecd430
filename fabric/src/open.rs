//! Opens a probe endpoint for a wire transport description, and fills the fabric
//! facts of a FabricCheck answer.

use servescope_proto::v1::{FabricCheckResponse, FabricProvider, ProbeTransport};

use super::libfabric::{self, LibfabricEndpoint};
use super::nixl::{NixlEndpoint, NixlOptions, PythonChoice};
use super::ucx::{UcxEndpoint, UcxOptions};
use crate::endpoint::ProbeEndpoint;
use crate::error::FabricError;
use crate::plan::ProbePlan;

/// Opens this side's endpoint: libfabric with a provider, or UCX with optional
/// UCX_TLS / UCX_NET_DEVICES for this probe only.
pub fn open_endpoint(
    t: &ProbeTransport,
    plan: &ProbePlan,
) -> Result<Box<dyn ProbeEndpoint>, FabricError> {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match t.library.as_str() {
        "libfabric" => {
            if t.provider.is_empty() {
                return Err(FabricError::BadPeer(
                    "libfabric needs a provider (efa, tcp, shm, verbs, ...)".into(),
                ));
            }
            let library = crate::engine_libs::resolve_libfabric(t)?;
            Ok(Box::new(LibfabricEndpoint::open_with(
                &t.provider,
                library.as_deref(),
                plan,
            )?))
        }
        "ucx" => Ok(Box::new(UcxEndpoint::new(
            &UcxOptions {
                tls: opt(&t.ucx_tls),
                net_devices: opt(&t.ucx_net_devices),
                library: crate::engine_libs::resolve_ucx(t)?,
            },
            plan,
        )?)),
        "nixl" => Ok(Box::new(NixlEndpoint::open(&nixl_options(t), plan)?)),
        other => Err(FabricError::Unsupported(format!(
            "library `{other}` (libfabric, ucx or nixl)"
        ))),
    }
}

/// A NIXL probe's options from the wire: backend, block size, the Python to run,
/// and UCX_TLS / UCX_NET_DEVICES / FI_PROVIDER for the driver's environment.
pub fn nixl_options(t: &ProbeTransport) -> NixlOptions {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut env = Vec::new();
    for (k, v) in [
        ("UCX_TLS", &t.ucx_tls),
        ("UCX_NET_DEVICES", &t.ucx_net_devices),
        ("FI_PROVIDER", &t.provider),
    ] {
        if !v.is_empty() {
            env.push((k.to_string(), v.clone()));
        }
    }
    NixlOptions {
        backend: t.nixl_backend.clone(),
        python: PythonChoice {
            python: opt(&t.python).map(Into::into),
            engine_venv: opt(&t.engine_venv).map(Into::into),
            like_pid: (t.like_pid != 0).then_some(t.like_pid),
        },
        block_size: t.nixl_block_size,
        env,
    }
}

/// Fills what the loaded fabric libraries say into a FabricCheck answer: libfabric
/// providers (as `fi_info` lists them). Errors are reported, not fatal.
pub fn fill_check(r: &mut FabricCheckResponse) {
    match libfabric::providers() {
        Ok(list) => {
            r.providers = list
                .iter()
                .map(|p| FabricProvider {
                    provider: p.provider.clone(),
                    fabric: p.fabric.clone(),
                    domain: p.domain.clone(),
                    ep_type: p.ep_type.clone(),
                    rma: p.has_cap("FI_RMA"),
                    hmem: p.has_cap("FI_HMEM"),
                })
                .collect()
        }
        Err(e) => r.libfabric_error = e.to_string(),
    }
}
