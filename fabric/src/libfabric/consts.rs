//! The flag bits we use, as `u64` (bindgen types small `#define`s as `u32`).

use super::sys;

pub const MSG: u64 = sys::FI_MSG as u64;
pub const RMA: u64 = sys::FI_RMA as u64;
pub const TAGGED: u64 = sys::FI_TAGGED as u64;
pub const ATOMIC: u64 = sys::FI_ATOMIC as u64;
pub const MULTICAST: u64 = sys::FI_MULTICAST as u64;
pub const COLLECTIVE: u64 = sys::FI_COLLECTIVE as u64;
pub const READ: u64 = sys::FI_READ as u64;
pub const WRITE: u64 = sys::FI_WRITE as u64;
pub const RECV: u64 = sys::FI_RECV as u64;
pub const SEND: u64 = sys::FI_SEND as u64;
pub const TRANSMIT: u64 = sys::FI_TRANSMIT as u64;
pub const REMOTE_READ: u64 = sys::FI_REMOTE_READ as u64;
pub const REMOTE_WRITE: u64 = sys::FI_REMOTE_WRITE as u64;
pub const HMEM: u64 = sys::FI_HMEM;
pub const LOCAL_COMM: u64 = sys::FI_LOCAL_COMM;
pub const REMOTE_COMM: u64 = sys::FI_REMOTE_COMM;
pub const SOURCE: u64 = sys::FI_SOURCE;
pub const DIRECTED_RECV: u64 = sys::FI_DIRECTED_RECV;
/// Mode bits we honour: every operation gets its own `struct fi_context2`.
pub const CONTEXT: u64 = sys::FI_CONTEXT;
pub const CONTEXT2: u64 = sys::FI_CONTEXT2;

pub const MR_LOCAL: u64 = sys::FI_MR_LOCAL as u64;
pub const MR_RAW: u64 = sys::FI_MR_RAW as u64;
pub const MR_VIRT_ADDR: u64 = sys::FI_MR_VIRT_ADDR as u64;
pub const MR_ALLOCATED: u64 = sys::FI_MR_ALLOCATED as u64;
pub const MR_PROV_KEY: u64 = sys::FI_MR_PROV_KEY as u64;
pub const MR_MMU_NOTIFY: u64 = sys::FI_MR_MMU_NOTIFY as u64;
pub const MR_RMA_EVENT: u64 = sys::FI_MR_RMA_EVENT as u64;
pub const MR_ENDPOINT: u64 = sys::FI_MR_ENDPOINT as u64;
pub const MR_HMEM: u64 = sys::FI_MR_HMEM as u64;

/// `FI_ADDR_UNSPEC`: receive from anyone.
pub const ADDR_UNSPEC: u64 = u64::MAX;

/// Negative return codes.
pub const EAGAIN: i64 = -(sys::FI_EAGAIN as i64);
pub const EAVAIL: i64 = -(sys::FI_EAVAIL as i64);
pub const ENODATA: i64 = -(sys::FI_ENODATA as i64);
pub const ETOOSMALL: i64 = -(sys::FI_ETOOSMALL as i64);
pub const ENOMEM: i64 = -(sys::FI_ENOMEM as i64);
