//! Probe buffers (page-aligned host memory or CUDA device memory) with their
//! registration, and the descriptor of a peer's registered buffer for RMA.

use std::ffi::c_void;

use super::sys;
use crate::cuda::CudaBuffer;
use crate::error::FabricError;
use crate::hostbuf::HostBuf;
use crate::plan::MemKind;
use crate::verify::MemRef;

pub(super) enum Mem {
    Host(HostBuf),
    Cuda(CudaBuffer),
}

/// A buffer and its registration (closed by the endpoint's Drop before the
/// buffer itself is freed).
pub(super) struct Region {
    pub mem: Mem,
    pub mr: *mut sys::fid_mr,
    pub desc: *mut c_void,
    pub key: u64,
}

impl Region {
    /// `touch`: see `ProbePlan::touch_payload` (host memory only).
    pub fn alloc(kind: MemKind, len: usize, touch: bool) -> Result<Region, FabricError> {
        let mem = match kind {
            MemKind::Host => Mem::Host(HostBuf::alloc(len, touch)?),
            MemKind::Cuda(n) => Mem::Cuda(CudaBuffer::alloc(n, len)?),
        };
        Ok(Region {
            mem,
            mr: std::ptr::null_mut(),
            desc: std::ptr::null_mut(),
            key: 0,
        })
    }
    pub fn ptr(&self) -> *mut c_void {
        match &self.mem {
            Mem::Host(h) => h.ptr().cast(),
            Mem::Cuda(c) => c.ptr(),
        }
    }
    pub fn len(&self) -> usize {
        match &self.mem {
            Mem::Host(h) => h.len(),
            Mem::Cuda(c) => c.len(),
        }
    }
    /// The buffer for contents verification.
    pub fn view(&self) -> MemRef<'_> {
        match &self.mem {
            Mem::Host(h) => MemRef::Host(h),
            Mem::Cuda(c) => MemRef::Cuda(c),
        }
    }
    pub fn cuda_device(&self) -> Option<i32> {
        match &self.mem {
            Mem::Host(_) => None,
            Mem::Cuda(c) => Some(c.device()),
        }
    }
}

/// A remote registered buffer (from the peer's `PeerInfo.rma`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RemoteBuf {
    pub addr: u64,
    pub len: u64,
    pub key: u64,
}

const RMA_INFO_VERSION: u8 = 1;

impl RemoteBuf {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(25);
        v.push(RMA_INFO_VERSION);
        v.extend_from_slice(&self.addr.to_le_bytes());
        v.extend_from_slice(&self.len.to_le_bytes());
        v.extend_from_slice(&self.key.to_le_bytes());
        v
    }
    pub fn decode(b: &[u8]) -> Result<RemoteBuf, FabricError> {
        if b.len() != 25 || b[0] != RMA_INFO_VERSION {
            return Err(FabricError::BadPeer(format!(
                "RMA descriptor of {} bytes (want 25, version {RMA_INFO_VERSION})",
                b.len()
            )));
        }
        let u = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        Ok(RemoteBuf {
            addr: u(1),
            len: u(9),
            key: u(17),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rma_descriptor_round_trip_and_rejects() {
        let r = RemoteBuf {
            addr: 0x7f00_dead_beef,
            len: 1 << 20,
            key: 42,
        };
        assert_eq!(RemoteBuf::decode(&r.encode()).unwrap(), r);
        assert!(RemoteBuf::decode(&[]).is_err());
        let mut bad = r.encode();
        bad[0] = 9;
        assert!(RemoteBuf::decode(&bad).is_err());
    }
}
