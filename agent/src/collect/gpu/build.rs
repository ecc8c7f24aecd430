//! Raw NVML reads → `GpuReading`, pure: counter widening, repeats of values not
//! read this tick (memory, energy, GPM totals, NVLink totals), and field errors. Tested on
//! canned raw values.

use servescope_proto::v1::{FieldError, GpuReading};

use super::fields::{FieldValue, WrapCounter};
use super::gpm::GpmTotals;
use super::raw::{RawFields, RawGpm, RawMemory, RawReading, Read, ReadError};
use super::slow::SlowState;

/// What one GPU's readings carry from one tick to the next.
#[derive(Debug, Default, Clone)]
pub struct GpuState {
    pcie_tx: WrapCounter,
    pcie_rx: WrapCounter,
    nvlink_tx: WrapCounter,
    nvlink_rx: WrapCounter,
    /// Field-value path: the last NVLink totals (tx, rx).
    nvlink_last: Option<(u64, u64)>,
    /// GPM path: the last totals.
    gpm_last: Option<GpmTotals>,
    /// The last energy reading.
    energy: Option<u64>,
    /// The last memory reading.
    memory: Option<RawMemory>,
}

impl GpuState {
    /// Whether GPM totals were read before (so a tick may repeat them).
    pub fn has_gpm_totals(&self) -> bool {
        self.gpm_last.is_some()
    }
}

/// A value, nothing when the GPU does not offer it, or nothing plus an error.
fn note<T>(errors: &mut Vec<FieldError>, field: &str, r: Read<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(ReadError::NotSupported) => None,
        Err(ReadError::Failed(error)) => {
            errors.push(FieldError {
                field: field.to_string(),
                error,
            });
            None
        }
    }
}

/// Builds one GPU's reading from one tick's reads and what earlier ticks left in
/// `prev`; `slow` (the slow sampler's latest) is attached when the device answered.
pub fn build_reading(raw: RawReading, prev: &mut GpuState, slow: Option<&SlowState>) -> GpuReading {
    let mut r = GpuReading {
        index: raw.index,
        ..Default::default()
    };
    let reads = match raw.device {
        Ok(reads) => reads,
        Err(error) => {
            r.errors.push(FieldError {
                field: "device".into(),
                error,
            });
            return r;
        }
    };
    let e = &mut r.errors;
    let memory = match reads.memory {
        Some(read) => {
            prev.memory = note(e, "memory", read);
            prev.memory
        }
        None => {
            r.memory_stale = prev.memory.is_some();
            prev.memory
        }
    };
    if let Some(m) = memory {
        r.memory_used_bytes = Some(m.used);
        r.memory_reserved_bytes = Some(m.reserved);
        r.memory_free_bytes = Some(m.free);
    }
    if let Some(u) = note(e, "utilization", reads.utilization) {
        r.util_gpu_pct = Some(u.gpu);
        r.util_memory_pct = Some(u.memory);
    }
    r.sm_clock_mhz = note(e, "sm_clock", reads.sm_clock_mhz);
    r.mem_clock_mhz = note(e, "mem_clock", reads.mem_clock_mhz);
    r.power_mw = note(e, "power", reads.power_mw);
    match reads.energy_mj {
        Some(read) => {
            prev.energy = note(e, "energy", read);
            r.energy_mj = prev.energy;
        }
        None => {
            r.energy_mj = prev.energy;
            r.energy_stale = prev.energy.is_some();
        }
    }
    r.temperature_c = note(e, "temperature", reads.temperature_c);
    r.throttle_reasons = note(e, "throttle_reasons", reads.throttle_reasons);

    match reads.gpm {
        Some(RawGpm::NotDue) => {
            if let Some(t) = prev.gpm_last {
                set_counters(&mut r, t);
                r.counters_stale = true;
            }
        }
        Some(RawGpm::Read(Ok(t))) => {
            set_counters(&mut r, t);
            prev.gpm_last = Some(t);
        }
        Some(RawGpm::Read(Err(err))) => r.errors.push(FieldError {
            field: "gpm".into(),
            error: err.describe(),
        }),
        None => {}
    }
    if let Some(f) = reads.fields {
        apply_fields(f, prev, &mut r);
    }
    if let Some(s) = slow {
        s.apply(&mut r);
    }
    r
}

fn set_counters(r: &mut GpuReading, t: GpmTotals) {
    r.pcie_tx_bytes = t.pcie_tx;
    r.pcie_rx_bytes = t.pcie_rx;
    r.nvlink_tx_bytes = t.nvlink_tx;
    r.nvlink_rx_bytes = t.nvlink_rx;
}

/// The field-value path: PCIe counters (32-bit, widened by [`WrapCounter`]; safe
/// while a link moves < 4 GiB per interval, i.e. PCIe Gen4 at 100 ms), NVLink
/// per-link KiB counters summed over the links that answered; between NVLink reads
/// the last totals are carried.
fn apply_fields(f: Read<RawFields>, prev: &mut GpuState, r: &mut GpuReading) {
    let e = &mut r.errors;
    match f {
        Ok(f) => {
            if let Some(v) = note(e, "pcie_tx_bytes", f.pcie_tx) {
                r.pcie_tx_bytes = Some(prev.pcie_tx.update(v));
            }
            if let Some(v) = note(e, "pcie_rx_bytes", f.pcie_rx) {
                r.pcie_rx_bytes = Some(prev.pcie_rx.update(v));
            }
            if let Some(links) = f.nvlink {
                let (mut tx, mut rx, mut ok) = (0u64, 0u64, false);
                for (t, x) in links {
                    if let (Ok(t), Ok(x)) = (t, x) {
                        tx = tx.saturating_add(t.value);
                        rx = rx.saturating_add(x.value);
                        ok = true;
                    }
                }
                if ok {
                    let kib = |v: u64| FieldValue {
                        value: v.saturating_mul(1024),
                        is_u32: false,
                    };
                    prev.nvlink_last = Some((
                        prev.nvlink_tx.update(kib(tx)),
                        prev.nvlink_rx.update(kib(rx)),
                    ));
                }
            }
        }
        Err(err) => e.push(FieldError {
            field: "field_values".into(),
            error: err.describe(),
        }),
    }
    if let Some((tx, rx)) = prev.nvlink_last {
        r.nvlink_tx_bytes = Some(tx);
        r.nvlink_rx_bytes = Some(rx);
    }
}
