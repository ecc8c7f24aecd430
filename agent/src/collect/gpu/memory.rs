//! The device memory read of every fast tick, through the cheaper of NVML's two
//! calls on this GPU.
//!
//! `nvmlDeviceGetMemoryInfo_v2` gives used, reserved (driver and firmware) and free
//! bytes; the older `nvmlDeviceGetMemoryInfo` (v1) gives total and free, with
//! reserved counted in `used`. On an H100 (driver 580) v2 took ~77 µs a call, which
//! at 10 Hz is most of a GPU's collector cost. At open both are timed on
//! interleaved calls ([`PROBE_CALLS`] each) and the cheaper is read every tick; with
//! v1, `used` is total − free − reserved ([`derive`]), `reserved` taken from a v2
//! read on the slow-fields cadence (it is a fixed reservation).

use std::time::Instant;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use nvml_wrapper_sys::bindings as sys;

use super::calls::{Call, CallNames};
use super::ffi::{check, sym};
use super::raw::{read, RawMemory, Read};
use crate::collect::CallCosts;

/// Calls of each kind timed at open.
pub const PROBE_CALLS: usize = 16;

/// Which NVML call gives the every-tick memory reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryCall {
    /// `nvmlDeviceGetMemoryInfo`: total and free; reserved from a periodic v2 read.
    V1,
    /// `nvmlDeviceGetMemoryInfo_v2`: used, reserved and free in one call.
    V2,
}

/// A v1 reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryV1 {
    pub total: u64,
    pub free: u64,
}

/// The v2 reading's fields, as a v2 tick gives them.
fn from_v2(m: &sys::nvmlMemory_v2_t) -> RawMemory {
    RawMemory {
        used: m.used,
        reserved: m.reserved,
        free: m.free,
    }
}

/// The reading a v1 call gives with `reserved` from an earlier v2 read: v1 counts
/// reserved bytes as used, v2 does not.
pub fn derive(v1: MemoryV1, reserved: u64) -> RawMemory {
    RawMemory {
        used: v1.total.saturating_sub(v1.free).saturating_sub(reserved),
        reserved,
        free: v1.free,
    }
}

/// Median of `ns` (the upper one of an even count); `None` when empty.
fn median(ns: &mut [u64]) -> Option<u64> {
    ns.sort_unstable();
    ns.get(ns.len() / 2).copied()
}

/// The call to read every tick from the probe's timings: v1 when both calls
/// answered every time and v1's median is below v2's, else v2 (as the agent read
/// before). `None` for a call that failed in the probe.
pub fn choose(v1_ns: Option<&mut [u64]>, v2_ns: Option<&mut [u64]>) -> Choice {
    let v1 = v1_ns.and_then(median);
    let v2 = v2_ns.and_then(median);
    let call = match (v1, v2) {
        (Some(a), Some(b)) if a < b => MemoryCall::V1,
        _ => MemoryCall::V2,
    };
    Choice {
        call,
        v1_ns: v1,
        v2_ns: v2,
    }
}

/// The probe's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub call: MemoryCall,
    /// Median cost of each call, where it answered every probe call.
    pub v1_ns: Option<u64>,
    pub v2_ns: Option<u64>,
}

impl Choice {
    /// What a person is shown once.
    pub fn describe(&self, gpu: u32) -> String {
        let us = |ns: Option<u64>| {
            ns.map_or("failed".to_string(), |n| {
                format!("{:.1} µs", n as f64 / 1e3)
            })
        };
        let how = match self.call {
            MemoryCall::V1 => {
                "nvmlDeviceGetMemoryInfo every tick, _v2 for reserved bytes once a second"
            }
            MemoryCall::V2 => "nvmlDeviceGetMemoryInfo_v2 every tick",
        };
        format!(
            "gpu {gpu}: memory read with {how} (median of {PROBE_CALLS} calls: v1 {}, v2 {})",
            us(self.v1_ns),
            us(self.v2_ns)
        )
    }
}

/// One `nvmlDeviceGetMemoryInfo` call.
pub fn read_v1(nvml: &Nvml, dev: sys::nvmlDevice_t) -> Result<MemoryV1, NvmlError> {
    let call = sym(&nvml.lib().nvmlDeviceGetMemoryInfo)?;
    let mut m = sys::nvmlMemory_t {
        total: 0,
        free: 0,
        used: 0,
    };
    // SAFETY: a live device handle of this NVML and a struct we own.
    check(unsafe { call(dev, &mut m) })?;
    Ok(MemoryV1 {
        total: m.total,
        free: m.free,
    })
}

/// One `nvmlDeviceGetMemoryInfo_v2` call.
pub fn read_v2(nvml: &Nvml, dev: sys::nvmlDevice_t) -> Result<RawMemory, NvmlError> {
    let call = sym(&nvml.lib().nvmlDeviceGetMemoryInfo_v2)?;
    let mut m = sys::nvmlMemory_v2_t {
        // NVML_STRUCT_VERSION(Memory, 2), as nvml.h defines it.
        version: (std::mem::size_of::<sys::nvmlMemory_v2_t>() | (2 << 24)) as u32,
        total: 0,
        reserved: 0,
        free: 0,
        used: 0,
    };
    // SAFETY: a live device handle of this NVML and a versioned struct we own.
    check(unsafe { call(dev, &mut m) })?;
    Ok(from_v2(&m))
}

/// Times `f`, returning its cost in ns alongside its result.
fn timed<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let t = Instant::now();
    let out = f();
    (
        out,
        u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX),
    )
}

/// One GPU's memory reads: the call chosen at open and the last reserved bytes.
#[derive(Debug, Clone)]
pub struct MemoryReader {
    choice: Choice,
    reserved: Option<u64>,
}

impl MemoryReader {
    /// Times [`PROBE_CALLS`] interleaved calls of each kind on `dev` and keeps the
    /// cheaper; the probe's calls are recorded as `memory_probe_v1`/`_v2`.
    pub fn probe(
        nvml: &Nvml,
        dev: sys::nvmlDevice_t,
        calls: &CallNames,
        costs: &CallCosts,
    ) -> Self {
        let mut v1 = Some(Vec::with_capacity(PROBE_CALLS));
        let mut v2 = Some(Vec::with_capacity(PROBE_CALLS));
        let mut reserved = None;
        for _ in 0..PROBE_CALLS {
            let (r, ns) = timed(|| read_v1(nvml, dev));
            calls.record_ns(costs, Call::MemoryProbeV1, ns);
            if r.is_err() {
                v1 = None;
            }
            if let Some(v) = v1.as_mut() {
                v.push(ns);
            }
            let (r, ns) = timed(|| read_v2(nvml, dev));
            calls.record_ns(costs, Call::MemoryProbeV2, ns);
            match r {
                Ok(m) => reserved = Some(m.reserved),
                Err(_) => v2 = None,
            }
            if let Some(v) = v2.as_mut() {
                v.push(ns);
            }
        }
        let choice = choose(v1.as_deref_mut(), v2.as_deref_mut());
        MemoryReader { choice, reserved }
    }

    pub fn choice(&self) -> Choice {
        self.choice
    }

    /// This tick's memory: the chosen call, and with v1 a v2 read when
    /// `reserved_due` (or no reserved bytes are known yet) instead.
    pub fn read(
        &mut self,
        nvml: &Nvml,
        dev: sys::nvmlDevice_t,
        reserved_due: bool,
        calls: &CallNames,
        costs: &CallCosts,
    ) -> Read<RawMemory> {
        match (self.choice.call, self.reserved) {
            (MemoryCall::V1, Some(reserved)) if !reserved_due => {
                let v1 = calls.time(costs, Call::Memory, || read_v1(nvml, dev));
                read(v1).map(|m| derive(m, reserved))
            }
            (MemoryCall::V1, _) => {
                let m = calls.time(costs, Call::MemoryReserved, || read_v2(nvml, dev));
                if let Ok(m) = &m {
                    self.reserved = Some(m.reserved);
                }
                read(m)
            }
            (MemoryCall::V2, _) => read(calls.time(costs, Call::Memory, || read_v2(nvml, dev))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// An H100's readings (bytes as NVML gave them): v1 counts the ~0.5 GiB the
    /// driver reserves as used; v2 splits it out.
    #[test]
    fn v1_used_less_reserved_is_v2_used() {
        let total = 85_520_809_984u64;
        let reserved = 565_706_752u64;
        let v2_used = 8_724_152_320u64;
        let free = total - reserved - v2_used;
        let m = derive(MemoryV1 { total, free }, reserved);
        assert_eq!(
            m,
            RawMemory {
                used: v2_used,
                reserved,
                free
            }
        );
        // An idle GPU: v1 used is the reservation alone.
        let idle = derive(
            MemoryV1 {
                total: 80 * GIB,
                free: 80 * GIB - GIB / 2,
            },
            GIB / 2,
        );
        assert_eq!((idle.used, idle.reserved), (0, GIB / 2));
        // A stale reserved larger than total − free never goes below zero.
        assert_eq!(derive(MemoryV1 { total: 10, free: 8 }, 5).used, 0);
    }

    #[test]
    fn the_cheaper_median_is_chosen_and_v2_when_either_failed() {
        let mut v1 = [13_000, 90_000, 12_000, 14_000, 15_000];
        let mut v2 = [77_000, 70_000, 10_000, 80_000, 75_000];
        let c = choose(Some(&mut v1), Some(&mut v2));
        assert_eq!(
            c,
            Choice {
                call: MemoryCall::V1,
                v1_ns: Some(14_000),
                v2_ns: Some(75_000)
            }
        );
        assert!(c.describe(3).starts_with(
            "gpu 3: memory read with nvmlDeviceGetMemoryInfo every tick, _v2 for reserved bytes once a second"
        ));
        assert!(c.describe(3).ends_with("v1 14.0 µs, v2 75.0 µs)"));
        // v2 cheaper, or a tie: v2.
        let (mut a, mut b) = ([50, 50], [40, 50]);
        assert_eq!(choose(Some(&mut a), Some(&mut b)).call, MemoryCall::V2);
        let (mut a, mut b) = ([50, 50], [50, 50]);
        assert_eq!(choose(Some(&mut a), Some(&mut b)).call, MemoryCall::V2);
        // v1 failed (old driver without it) or v2 failed: v2 as before.
        let mut b = [77_000];
        assert_eq!(choose(None, Some(&mut b)).call, MemoryCall::V2);
        let mut a = [1];
        let c = choose(Some(&mut a), None);
        assert_eq!((c.call, c.v1_ns, c.v2_ns), (MemoryCall::V2, Some(1), None));
        assert!(c.describe(0).ends_with("v1 0.0 µs, v2 failed)"));
        assert_eq!(median(&mut []), None);
    }
}
