//! Page-aligned, zeroed host memory for probe buffers (libfabric and UCX), as the
//! transports' own benchmarks allocate it: an anonymous mapping, from 2 MiB up
//! aligned to 2 MiB and advised for transparent huge pages before any page is
//! touched (`ucx_perftest` maps its buffers with `ucp_mem_map(UCP_MEM_MAP_ALLOCATE)`,
//! whose allocator tries THP first). Unless asked not to, every page is then written
//! once, so that the payload is real memory: an untouched page reads as the kernel's
//! shared zero page, which makes a sender's copies cheaper than a real KV cache's
//! (`ucx_perftest`'s sender never writes its buffer: its RSS stays ~10 MB while it
//! puts 256 MiB messages).

use crate::error::FabricError;

/// Transparent huge page size on x86_64 and most aarch64 kernels; buffers of at
/// least this size get huge pages (UCX's allocator does the same: `ucx_perftest`'s
/// 1 MiB buffers are 4 KiB pages, its 256 MiB ones huge pages).
const HUGE: usize = 2 << 20;

pub(crate) struct HostBuf {
    /// The mapping as made (unmapped in drop).
    map: *mut libc::c_void,
    map_len: usize,
    /// The buffer inside it.
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is owned by this value alone; the probe uses it from one thread
// at a time (through the transport library, which it hands the pointer to).
unsafe impl Send for HostBuf {}

impl HostBuf {
    /// `len` bytes (at least 1), page-aligned and zeroed; `touch`: every page
    /// written once (real memory) rather than left to fault in on first use.
    pub(crate) fn alloc(len: usize, touch: bool) -> Result<HostBuf, FabricError> {
        let len = len.max(1);
        let huge = len >= HUGE;
        // Whole huge pages, and room to align the first one inside the mapping.
        let (advised, map_len) = if huge {
            len.checked_next_multiple_of(HUGE)
                .and_then(|a| Some((a, a.checked_add(HUGE)?)))
                .ok_or_else(|| FabricError::Memory("host", format!("cannot size {len} bytes")))?
        } else {
            (len, len)
        };
        // SAFETY: a new private anonymous mapping; no existing memory is affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(FabricError::Memory(
                "host",
                format!(
                    "cannot map {len} bytes: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        let mut ptr = map.cast::<u8>();
        if huge {
            let skip = (HUGE - (map as usize) % HUGE) % HUGE;
            // SAFETY: skip < HUGE and the mapping is advised + HUGE bytes long.
            ptr = unsafe { ptr.add(skip) };
            // Advice only: a kernel without THP (or with it off) keeps 4 KiB pages.
            // SAFETY: [ptr, ptr+advised) lies inside the mapping made above.
            unsafe { libc::madvise(ptr.cast(), advised, libc::MADV_HUGEPAGE) };
        }
        if touch {
            // SAFETY: [ptr, ptr+len) lies inside the mapping, writable, owned here.
            unsafe { std::ptr::write_bytes(ptr, 0, len) };
        }
        Ok(HostBuf {
            map,
            map_len,
            ptr,
            len,
        })
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in HostBuf::alloc, unmapped once.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_and_zeroed() {
        let b = HostBuf::alloc(100_000, true).unwrap();
        assert_eq!(b.ptr() as usize % 4096, 0);
        assert_eq!(b.len(), 100_000);
        // SAFETY: ptr is valid for len bytes.
        let s = unsafe { std::slice::from_raw_parts(b.ptr(), b.len()) };
        assert!(s.iter().all(|&x| x == 0));
        assert!(HostBuf::alloc(0, false).is_ok());
    }

    #[test]
    fn large_buffers_are_huge_page_aligned_and_writable() {
        let len = (2 << 20) + 5;
        let b = HostBuf::alloc(len, false).unwrap();
        assert_eq!(b.ptr() as usize % HUGE, 0);
        // SAFETY: ptr is valid for len bytes, owned by b.
        let s = unsafe { std::slice::from_raw_parts_mut(b.ptr(), b.len()) };
        assert!(s.iter().all(|&x| x == 0));
        s[len - 1] = 7;
        s[0] = 1;
        assert_eq!(s[len - 1], 7);
    }
}
