//! The probe buffer: host memory, or GPU memory from the shared CUDA driver loader
//! (`crate::cuda`), mapped into UCX with the matching memory type.

use std::ffi::c_void;

use super::sys::{ucs_memory_type, UCS_MEMORY_TYPE_CUDA, UCS_MEMORY_TYPE_HOST};
use crate::cuda::CudaBuffer;
use crate::error::FabricError;
use crate::hostbuf::HostBuf;
use crate::plan::MemKind;
use crate::verify::MemRef;

pub(super) enum Buffer {
    Host(HostBuf),
    Cuda(CudaBuffer),
}

impl Buffer {
    /// `len` bytes of `kind` memory (at least 64 bytes); `touch`: see
    /// `ProbePlan::touch_payload`.
    pub fn alloc(kind: MemKind, len: u64, touch: bool) -> Result<Self, FabricError> {
        let len = usize::try_from(len.max(64)).map_err(|_| {
            FabricError::Memory("host", "buffer larger than the address space".into())
        })?;
        match kind {
            MemKind::Host => HostBuf::alloc(len, touch).map(Buffer::Host),
            MemKind::Cuda(dev) => CudaBuffer::alloc(dev, len).map(Buffer::Cuda),
        }
    }

    pub fn ptr(&self) -> *mut c_void {
        match self {
            Buffer::Host(h) => h.ptr().cast::<c_void>(),
            Buffer::Cuda(c) => c.ptr(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Buffer::Host(h) => h.len(),
            Buffer::Cuda(c) => c.len(),
        }
    }

    pub fn memory_type(&self) -> ucs_memory_type {
        match self {
            Buffer::Host(_) => UCS_MEMORY_TYPE_HOST,
            Buffer::Cuda(_) => UCS_MEMORY_TYPE_CUDA,
        }
    }

    /// The buffer for contents verification.
    pub fn view(&self) -> MemRef<'_> {
        match self {
            Buffer::Host(h) => MemRef::Host(h),
            Buffer::Cuda(c) => MemRef::Cuda(c),
        }
    }
}
