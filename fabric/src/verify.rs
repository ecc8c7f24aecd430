//! Contents verification of probe buffers. Before an operation's measured phase the
//! sending side fills the first `size` bytes of its buffer with a pattern derived
//! from the size, and the receiving side fills its own with the pattern's complement
//! (every byte differs, so bytes that never arrived are caught); after the phase the
//! receiving side compares what it holds with the pattern. The pattern of 64-bit
//! word `i` is `mix(i ⊕ salt(size))` (`mix` a bijective 64-bit mixer): distinct for
//! every word (a block landing at the wrong offset differs) and for every size (a
//! previous size's bytes differ).
//! GPU memory is filled and read through the CUDA driver in chunks.

use crate::cuda::CudaBuffer;
use crate::error::FabricError;
use crate::hostbuf::HostBuf;
use crate::plan::Op;

/// Bytes staged per copy to or from GPU memory (and compared per step).
const CHUNK: usize = 4 << 20;

/// A probe buffer, whichever memory it lives in.
#[derive(Clone, Copy)]
pub(crate) enum MemRef<'a> {
    Host(&'a HostBuf),
    Cuda(&'a CudaBuffer),
}

impl MemRef<'_> {
    fn len(&self) -> usize {
        match self {
            MemRef::Host(h) => h.len(),
            MemRef::Cuda(c) => c.len(),
        }
    }

    fn write(&self, off: usize, src: &[u8]) -> Result<(), FabricError> {
        match self {
            MemRef::Host(h) => {
                bounds(off, src.len(), h.len())?;
                // SAFETY: [off, off+len) lies in the mapping (checked); the transport
                // does not touch the buffer between phases.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), h.ptr().add(off), src.len()) };
                Ok(())
            }
            MemRef::Cuda(c) => c.write_at(off, src),
        }
    }

    fn read(&self, off: usize, dst: &mut [u8]) -> Result<(), FabricError> {
        match self {
            MemRef::Host(h) => {
                bounds(off, dst.len(), h.len())?;
                // SAFETY: as in `write`.
                unsafe {
                    std::ptr::copy_nonoverlapping(h.ptr().add(off), dst.as_mut_ptr(), dst.len())
                };
                Ok(())
            }
            MemRef::Cuda(c) => c.read_at(off, dst),
        }
    }
}

fn bounds(off: usize, n: usize, len: usize) -> Result<(), FabricError> {
    if off.checked_add(n).is_none_or(|end| end > len) {
        return Err(FabricError::Memory(
            "host",
            format!("{n} bytes at {off} outside a {len}-byte buffer"),
        ));
    }
    Ok(())
}

fn salt(size: u64) -> u64 {
    mix(size.wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// The splitmix64 finaliser: a bijection in which nearby inputs differ in every byte.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pattern of `size` for bytes `[off, off + out.len())`; `off` is a multiple of 8.
fn pattern(size: u64, off: usize, out: &mut [u8], inverted: bool) {
    let s = salt(size);
    let flip = if inverted { u64::MAX } else { 0 };
    let first = (off / 8) as u64;
    for (k, chunk) in out.chunks_mut(8).enumerate() {
        let w = mix((first + k as u64) ^ s) ^ flip;
        chunk.copy_from_slice(&w.to_le_bytes()[..chunk.len()]);
    }
}

fn checked_size(m: MemRef<'_>, size: u64) -> Result<usize, FabricError> {
    usize::try_from(size)
        .ok()
        .filter(|s| *s <= m.len())
        .ok_or_else(|| FabricError::BadPeer(format!("{size} bytes over a {}-byte buffer", m.len())))
}

/// Fills `[0, size)` with the pattern of `size`, or its complement.
pub(crate) fn fill(m: MemRef<'_>, size: u64, inverted: bool) -> Result<(), FabricError> {
    let n = checked_size(m, size)?;
    let mut stage = vec![0u8; n.min(CHUNK)];
    for off in (0..n).step_by(CHUNK) {
        let part = &mut stage[..(n - off).min(CHUNK)];
        pattern(size, off, part, inverted);
        m.write(off, part)?;
    }
    Ok(())
}

/// The first byte of a received buffer that differs from the sender's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub offset: u64,
    pub expected: u8,
    pub got: u8,
}

impl Mismatch {
    pub fn into_error(self, op: Op, size: u64) -> FabricError {
        FabricError::Mismatch {
            op: op.name(),
            size,
            offset: self.offset,
            expected: self.expected,
            got: self.got,
        }
    }
}

/// Compares `[0, size)` with the pattern of `size`; `corrupt`: a test hook that
/// flips the byte at that offset first (as if it had arrived damaged).
pub(crate) fn check(
    m: MemRef<'_>,
    size: u64,
    corrupt: Option<u64>,
) -> Result<Option<Mismatch>, FabricError> {
    let n = checked_size(m, size)?;
    if let Some(at) = corrupt
        .and_then(|c| usize::try_from(c).ok())
        .filter(|c| *c < n)
    {
        let mut b = [0u8; 1];
        m.read(at, &mut b)?;
        m.write(at, &[!b[0]])?;
    }
    let mut want = vec![0u8; n.min(CHUNK)];
    let mut have = vec![0u8; n.min(CHUNK)];
    for off in (0..n).step_by(CHUNK) {
        let k = (n - off).min(CHUNK);
        pattern(size, off, &mut want[..k], false);
        m.read(off, &mut have[..k])?;
        if want[..k] != have[..k] {
            if let Some(i) = (0..k).find(|&i| want[i] != have[i]) {
                return Ok(Some(Mismatch {
                    offset: (off + i) as u64,
                    expected: want[i],
                    got: have[i],
                }));
            }
        }
    }
    Ok(None)
}

/// Whether the driving side is the one that receives `op`'s bytes (a read pulls
/// them to the driver; a send or write pushes them to the responder).
pub(crate) fn driver_receives(op: Op) -> bool {
    op == Op::RmaRead
}

/// Readies one side's buffer for `op`: the sender's holds the pattern, the
/// receiver's its complement.
pub(crate) fn prepare(m: MemRef<'_>, op: Op, size: u64, driver: bool) -> Result<(), FabricError> {
    let receives = driver_receives(op) == driver;
    fill(m, size, receives)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(len: usize) -> HostBuf {
        HostBuf::alloc(len, true).unwrap()
    }

    #[test]
    fn filled_pattern_checks_and_complement_differs_everywhere() {
        let b = host(100_003);
        let m = MemRef::Host(&b);
        for size in [1u64, 7, 8, 4096, 100_003] {
            fill(m, size, false).unwrap();
            assert_eq!(check(m, size, None).unwrap(), None, "size {size}");
            fill(m, size, true).unwrap();
            assert_eq!(check(m, size, None).unwrap().map(|x| x.offset), Some(0));
        }
    }

    #[test]
    fn corruption_names_the_offset_and_bytes() {
        let b = host(1 << 20);
        let m = MemRef::Host(&b);
        fill(m, 65536, false).unwrap();
        let x = check(m, 65536, Some(4100)).unwrap().expect("mismatch");
        assert_eq!(x.offset, 4100);
        assert_eq!(x.got, !x.expected);
        let e = x.into_error(Op::RmaWrite, 65536).to_string();
        assert!(
            e.contains("rma_write") && e.contains("65536") && e.contains("offset 4100"),
            "{e}"
        );
        // A corruption beyond the checked size is ignored (nothing arrived there).
        fill(m, 1024, false).unwrap();
        assert_eq!(check(m, 1024, Some(5000)).unwrap(), None);
    }

    #[test]
    fn misplaced_blocks_and_other_sizes_are_caught() {
        let b = host(1 << 16);
        let m = MemRef::Host(&b);
        fill(m, 1 << 16, false).unwrap();
        // The same bytes, one 4 KiB block moved: differs at that block.
        let mut v = vec![0u8; 1 << 16];
        m.read(0, &mut v).unwrap();
        v.copy_within(0..4096, 8192);
        m.write(0, &v).unwrap();
        let at = check(m, 1 << 16, None).unwrap().map(|x| x.offset);
        assert!(at.is_some_and(|o| (8192..8200).contains(&o)), "{at:?}");
        // Another size's pattern is not this size's.
        fill(m, 1 << 15, false).unwrap();
        assert!(check(m, 1 << 15, None).unwrap().is_none());
        assert!(check(m, (1 << 15) + 8, None).unwrap().is_some());
        assert!(check(m, 1 << 20, None).is_err());
    }

    #[test]
    fn sides_prepare_opposite_contents() {
        assert!(driver_receives(Op::RmaRead));
        assert!(!driver_receives(Op::Tag) && !driver_receives(Op::RmaWrite));
    }
}
