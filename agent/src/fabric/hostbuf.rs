//! Page-aligned, zeroed host memory for probe buffers (libfabric and UCX): what
//! `fi_pingpong` and `ucx_perftest` use too, so that copies of the payload (TCP's
//! kernel copies, shared-memory copies) start on a page boundary on both sides of
//! a comparison.

use std::alloc::{alloc_zeroed, dealloc, Layout};

use crate::fabric::FabricError;

pub(crate) struct HostBuf {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the buffer is owned by this value alone; the probe uses it from one thread
// at a time (through the transport library, which it hands the pointer to).
unsafe impl Send for HostBuf {}

impl HostBuf {
    /// `len` bytes (at least 1), page-aligned.
    pub(crate) fn alloc(len: usize) -> Result<HostBuf, FabricError> {
        let layout = Layout::from_size_align(len.max(1), 4096)
            .map_err(|e| FabricError::Memory("host", e.to_string()))?;
        // SAFETY: layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(FabricError::Memory(
                "host",
                format!("cannot allocate {len} bytes"),
            ));
        }
        Ok(HostBuf { ptr, layout })
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub(crate) fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in HostBuf::alloc with this layout; freed once.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_and_zeroed() {
        let b = HostBuf::alloc(100_000).unwrap();
        assert_eq!(b.ptr() as usize % 4096, 0);
        assert_eq!(b.len(), 100_000);
        // SAFETY: ptr is valid for len bytes.
        let s = unsafe { std::slice::from_raw_parts(b.ptr(), b.len()) };
        assert!(s.iter().all(|&x| x == 0));
        assert!(HostBuf::alloc(0).is_ok());
    }
}
