//! What `fi_info` prints: every provider/fabric/domain/endpoint type the loaded
//! libfabric offers, with the capabilities a probe cares about.

use super::consts as c;
use super::info::{names, InfoList};
use super::loader::lib;
use super::sys;
use crate::error::FabricError;

/// The loaded library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryInfo {
    pub path: String,
    /// `fi_version()` as "major.minor".
    pub version: String,
}

/// One `fi_getinfo` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// e.g. "efa", "tcp;ofi_rxm", "shm".
    pub provider: String,
    pub fabric: String,
    pub domain: String,
    /// "FI_EP_RDM", "FI_EP_MSG", "FI_EP_DGRAM".
    pub ep_type: String,
    /// Names of the capability bits set, e.g. ["FI_MSG", "FI_RMA", "FI_TAGGED"].
    pub caps: Vec<&'static str>,
}

impl ProviderInfo {
    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.contains(&cap)
    }
    /// The core provider of a layered name ("tcp;ofi_rxm" → "tcp").
    pub fn core_provider(&self) -> &str {
        self.provider.split(';').next().unwrap_or("")
    }
}

/// Path and version of the libfabric found (EFA installer copy first).
pub fn library() -> Result<LibraryInfo, FabricError> {
    let l = lib()?;
    Ok(LibraryInfo {
        path: l.path.clone(),
        version: l.version_string(),
    })
}

/// Every entry of `fi_getinfo` with no hints.
pub fn providers() -> Result<Vec<ProviderInfo>, FabricError> {
    let l = lib()?;
    let list = InfoList::get(l, None)?;
    Ok(list
        .iter()
        .map(|i| {
            let (provider, fabric, domain) = names(i);
            let ep = if i.ep_attr.is_null() {
                0
            } else {
                // SAFETY: non-null ep_attr of a live list entry.
                unsafe { (*i.ep_attr).type_ }
            };
            ProviderInfo {
                provider,
                fabric,
                domain,
                ep_type: ep_type_name(ep).to_string(),
                caps: cap_names(i.caps),
            }
        })
        .collect())
}

/// Whether a provider of this (core) name is offered, e.g. `has_provider(&l, "efa")`.
pub fn has_provider(list: &[ProviderInfo], name: &str) -> bool {
    list.iter()
        .any(|p| p.provider == name || p.core_provider() == name)
}

pub fn ep_type_name(t: sys::fi_ep_type) -> &'static str {
    match t {
        sys::FI_EP_MSG => "FI_EP_MSG",
        sys::FI_EP_DGRAM => "FI_EP_DGRAM",
        sys::FI_EP_RDM => "FI_EP_RDM",
        sys::FI_EP_SOCK_STREAM => "FI_EP_SOCK_STREAM",
        sys::FI_EP_SOCK_DGRAM => "FI_EP_SOCK_DGRAM",
        _ => "FI_EP_UNSPEC",
    }
}

const CAPS: &[(u64, &str)] = &[
    (c::MSG, "FI_MSG"),
    (c::RMA, "FI_RMA"),
    (c::TAGGED, "FI_TAGGED"),
    (c::ATOMIC, "FI_ATOMIC"),
    (c::MULTICAST, "FI_MULTICAST"),
    (c::COLLECTIVE, "FI_COLLECTIVE"),
    (c::READ, "FI_READ"),
    (c::WRITE, "FI_WRITE"),
    (c::RECV, "FI_RECV"),
    (c::SEND, "FI_SEND"),
    (c::REMOTE_READ, "FI_REMOTE_READ"),
    (c::REMOTE_WRITE, "FI_REMOTE_WRITE"),
    (c::HMEM, "FI_HMEM"),
    (c::LOCAL_COMM, "FI_LOCAL_COMM"),
    (c::REMOTE_COMM, "FI_REMOTE_COMM"),
    (c::SOURCE, "FI_SOURCE"),
    (c::DIRECTED_RECV, "FI_DIRECTED_RECV"),
];

/// Names of the capability bits we report, in a fixed order.
pub fn cap_names(caps: u64) -> Vec<&'static str> {
    CAPS.iter()
        .filter(|(bit, _)| caps & bit != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// Names of the `mr_mode` bits (for TransportTruth notes).
pub fn mr_mode_names(mode: u64) -> Vec<&'static str> {
    const MODES: &[(u64, &str)] = &[
        (c::MR_LOCAL, "FI_MR_LOCAL"),
        (c::MR_RAW, "FI_MR_RAW"),
        (c::MR_VIRT_ADDR, "FI_MR_VIRT_ADDR"),
        (c::MR_ALLOCATED, "FI_MR_ALLOCATED"),
        (c::MR_PROV_KEY, "FI_MR_PROV_KEY"),
        (c::MR_MMU_NOTIFY, "FI_MR_MMU_NOTIFY"),
        (c::MR_RMA_EVENT, "FI_MR_RMA_EVENT"),
        (c::MR_ENDPOINT, "FI_MR_ENDPOINT"),
        (c::MR_HMEM, "FI_MR_HMEM"),
    ];
    MODES
        .iter()
        .filter(|(bit, _)| mode & bit != 0)
        .map(|(_, n)| *n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_and_mode_names() {
        let caps = c::MSG | c::RMA | c::HMEM;
        assert_eq!(cap_names(caps), vec!["FI_MSG", "FI_RMA", "FI_HMEM"]);
        assert_eq!(cap_names(0), Vec::<&str>::new());
        let m = c::MR_LOCAL | c::MR_PROV_KEY;
        assert_eq!(mr_mode_names(m), vec!["FI_MR_LOCAL", "FI_MR_PROV_KEY"]);
        assert_eq!(ep_type_name(sys::FI_EP_RDM), "FI_EP_RDM");
    }

    #[test]
    fn layered_provider_names() {
        let p = ProviderInfo {
            provider: "tcp;ofi_rxm".into(),
            fabric: "f".into(),
            domain: "d".into(),
            ep_type: "FI_EP_RDM".into(),
            caps: vec!["FI_TAGGED"],
        };
        assert_eq!(p.core_provider(), "tcp");
        assert!(has_provider(std::slice::from_ref(&p), "tcp"));
        assert!(!has_provider(&[p], "efa"));
    }

    #[test]
    fn lists_providers_when_installed() {
        match providers() {
            Ok(list) => assert!(list.iter().all(|p| !p.provider.is_empty())),
            Err(e) => eprintln!("skipping: {e}"),
        }
    }
}
