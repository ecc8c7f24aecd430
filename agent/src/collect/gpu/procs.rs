//! A GPU's compute process list in one NVML call into a buffer kept between reads.
//!
//! nvml-wrapper's `running_compute_processes` asks for the count first and then
//! for the list (two driver calls, ~177 µs together on an H100 with a CUDA process
//! present, and a fresh `Vec` each time); this asks once with room for
//! [`START_CAPACITY`] processes and grows the buffer only when NVML says it is too
//! small.

use std::os::raw::c_uint;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use nvml_wrapper_sys::bindings as sys;

use super::ffi::sym;

/// Processes the buffer holds at first.
pub const START_CAPACITY: usize = 32;
/// Tries before giving up while processes keep appearing between calls.
const TRIES: usize = 4;

/// One process of the list: its pid and the GPU memory it holds (`None` where
/// NVML cannot say, e.g. in a container without the host's pid namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcMem {
    pub pid: u32,
    pub used_bytes: Option<u64>,
}

fn zeroed() -> sys::nvmlProcessInfo_t {
    sys::nvmlProcessInfo_t {
        pid: 0,
        usedGpuMemory: 0,
        gpuInstanceId: 0,
        computeInstanceId: 0,
    }
}

fn decode(p: &sys::nvmlProcessInfo_t) -> ProcMem {
    // NVML_VALUE_NOT_AVAILABLE: (unsigned long long)-1.
    ProcMem {
        pid: p.pid,
        used_bytes: (p.usedGpuMemory != u64::MAX).then_some(p.usedGpuMemory),
    }
}

/// Fills `buf` through `call` (NVML's in/out count and the array) and returns how
/// many entries it wrote: once when the buffer is large enough, else grown to the
/// count NVML asked for (with headroom for processes starting meanwhile) and again.
pub fn list_into<F>(buf: &mut Vec<sys::nvmlProcessInfo_t>, mut call: F) -> Result<usize, NvmlError>
where
    F: FnMut(&mut c_uint, *mut sys::nvmlProcessInfo_t) -> sys::nvmlReturn_t,
{
    if buf.is_empty() {
        buf.resize(START_CAPACITY, zeroed());
    }
    for _ in 0..TRIES {
        let mut count = c_uint::try_from(buf.len()).unwrap_or(c_uint::MAX);
        let ret = call(&mut count, buf.as_mut_ptr());
        if ret == sys::nvmlReturn_enum_NVML_SUCCESS {
            return Ok((count as usize).min(buf.len()));
        }
        if ret != sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE {
            return Err(NvmlError::from(ret));
        }
        let want = (count as usize).max(buf.len()) + 8;
        buf.resize(want, zeroed());
    }
    Err(NvmlError::from(
        sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE,
    ))
}

/// The process list reader of one GPU; its buffer is kept between reads.
#[derive(Default)]
pub struct ProcessLister {
    buf: Vec<sys::nvmlProcessInfo_t>,
}

// SAFETY: the buffer holds plain data only (pids and byte counts).
unsafe impl Send for ProcessLister {}

impl ProcessLister {
    /// Reads the compute processes of `dev` into `out` (cleared first).
    pub fn read(
        &mut self,
        nvml: &Nvml,
        dev: sys::nvmlDevice_t,
        out: &mut Vec<ProcMem>,
    ) -> Result<(), NvmlError> {
        let call = sym(&nvml.lib().nvmlDeviceGetComputeRunningProcesses_v3)?;
        // SAFETY: a live device handle of this NVML; `count` says how many entries
        // the array has room for, and NVML writes at most that many.
        let n = list_into(&mut self.buf, |count, ptr| unsafe { call(dev, count, ptr) })?;
        out.clear();
        out.extend(self.buf[..n].iter().map(decode));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, bytes: u64) -> sys::nvmlProcessInfo_t {
        sys::nvmlProcessInfo_t {
            pid,
            usedGpuMemory: bytes,
            gpuInstanceId: u32::MAX,
            computeInstanceId: u32::MAX,
        }
    }

    /// NVML's contract on canned lists: writes up to `*count` entries and sets
    /// `*count` to how many; too small a buffer gets INSUFFICIENT_SIZE and the count.
    fn driver(
        list: &[sys::nvmlProcessInfo_t],
    ) -> impl FnMut(&mut c_uint, *mut sys::nvmlProcessInfo_t) -> sys::nvmlReturn_t + '_ {
        move |count, ptr| {
            let room = *count as usize;
            *count = list.len() as c_uint;
            if room < list.len() {
                return sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
            }
            for (i, p) in list.iter().enumerate() {
                // SAFETY: `room` ≥ list.len() entries at `ptr` (the caller's buffer).
                unsafe { *ptr.add(i) = *p };
            }
            sys::nvmlReturn_enum_NVML_SUCCESS
        }
    }

    #[test]
    fn one_call_when_the_buffer_is_large_enough() {
        let list = [proc(7, 1 << 30), proc(9, u64::MAX)];
        let mut buf = Vec::new();
        let mut d = driver(&list);
        let mut n_calls = 0;
        let n = list_into(&mut buf, |c, p| {
            n_calls += 1;
            d(c, p)
        })
        .unwrap();
        assert_eq!((n, n_calls, buf.len()), (2, 1, START_CAPACITY));
        let got: Vec<ProcMem> = buf[..n].iter().map(decode).collect();
        assert_eq!(
            got,
            vec![
                ProcMem {
                    pid: 7,
                    used_bytes: Some(1 << 30)
                },
                ProcMem {
                    pid: 9,
                    used_bytes: None
                }
            ]
        );
    }

    #[test]
    fn grows_when_nvml_says_too_small_and_keeps_the_room() {
        let list: Vec<_> = (0..40).map(|i| proc(100 + i, 1 << 20)).collect();
        let mut buf = Vec::new();
        let mut d = driver(&list);
        let mut n_calls = 0;
        let mut counting = |c: &mut c_uint, p| {
            n_calls += 1;
            d(c, p)
        };
        assert_eq!(list_into(&mut buf, &mut counting).unwrap(), 40);
        assert_eq!(buf.len(), 48);
        assert_eq!(buf[39].pid, 139);
        // The next read fits at once.
        assert_eq!(list_into(&mut buf, &mut counting).unwrap(), 40);
        assert_eq!(n_calls, 3);
    }

    #[test]
    fn other_errors_are_returned_and_endless_growth_stops() {
        let mut buf = Vec::new();
        let err = list_into(&mut buf, |_, _| sys::nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST);
        assert!(matches!(err, Err(NvmlError::GpuLost)));
        // A list that outgrows every buffer (processes appearing faster than reads).
        let mut n = 0;
        let err = list_into(&mut buf, |count, _| {
            n += 1;
            *count += 100;
            sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE
        });
        assert!(matches!(err, Err(NvmlError::InsufficientSize(_))));
        assert_eq!(n, TRIES);
    }
}
