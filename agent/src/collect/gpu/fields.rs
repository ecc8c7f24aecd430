//! NVML field values read one level below nvml-wrapper, so that each request can
//! carry a scope (the NVLink link index), and cumulative counters that NVML reports
//! as wrapping 32-bit values are widened to u64.

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings as sys;

use super::ffi::{check, sym};

/// PCIe bytes transmitted (cumulative, U32 on Hopper: wraps at 4 GiB).
pub const PCIE_TX_BYTES: u32 = 197;
/// PCIe bytes received.
pub const PCIE_RX_BYTES: u32 = 198;
/// NVLink data transmitted, KiB, per link (scope = link index).
pub const NVLINK_DATA_TX_KIB: u32 = 138;
/// NVLink data received, KiB, per link.
pub const NVLINK_DATA_RX_KIB: u32 = 139;
/// Number of NVLink links.
pub const NVLINK_LINK_COUNT: u32 = 91;

/// A decoded field value: the integer and whether NVML returned it as 32-bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldValue {
    pub value: u64,
    pub is_u32: bool,
}

/// Reads `(field id, scope)` pairs in one driver call.
pub fn read(
    nvml: &Nvml,
    dev: &Device<'_>,
    reqs: &[(u32, u32)],
) -> Result<Vec<Result<FieldValue, NvmlError>>, NvmlError> {
    let call = sym(&nvml.lib().nvmlDeviceGetFieldValues)?;
    let mut vals: Vec<sys::nvmlFieldValue_t> = reqs
        .iter()
        .map(|&(id, scope)| {
            // SAFETY: nvmlFieldValue_t is plain old data; all-zero is valid.
            let mut v: sys::nvmlFieldValue_t = unsafe { std::mem::zeroed() };
            v.fieldId = id;
            v.scopeId = scope;
            v
        })
        .collect();
    let n = i32::try_from(vals.len()).map_err(|_| NvmlError::InvalidArg)?;
    // SAFETY: the handle comes from a live Device; `vals` has `n` initialised entries.
    check(unsafe { call(dev.handle(), n, vals.as_mut_ptr()) })?;
    Ok(vals.iter().map(decode).collect())
}

fn decode(v: &sys::nvmlFieldValue_t) -> Result<FieldValue, NvmlError> {
    if v.nvmlReturn != sys::nvmlReturn_enum_NVML_SUCCESS {
        return Err(NvmlError::from(v.nvmlReturn));
    }
    // SAFETY: valueType says which union member NVML wrote.
    unsafe {
        let (value, is_u32) = match v.valueType {
            sys::nvmlValueType_enum_NVML_VALUE_TYPE_DOUBLE => (v.value.dVal.max(0.0) as u64, false),
            sys::nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT => {
                (u64::from(v.value.uiVal), true)
            }
            sys::nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_LONG => (v.value.ulVal, false),
            sys::nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_LONG_LONG => (v.value.ullVal, false),
            sys::nvmlValueType_enum_NVML_VALUE_TYPE_SIGNED_LONG_LONG => {
                (v.value.sllVal.max(0) as u64, false)
            }
            sys::nvmlValueType_enum_NVML_VALUE_TYPE_SIGNED_INT => {
                (v.value.siVal.max(0) as u64, true)
            }
            sys::nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_SHORT => {
                (u64::from(v.value.usVal), false)
            }
            _ => return Err(NvmlError::UnexpectedVariant(v.valueType)),
        };
        Ok(FieldValue { value, is_u32 })
    }
}

/// Widens a cumulative counter that may wrap (at 2^32 when NVML hands out U32) into a
/// monotonic u64. The first reading is the origin: the counter starts at that raw
/// value so that it stays comparable with the driver's.
#[derive(Debug, Default, Clone, Copy)]
pub struct WrapCounter {
    last_raw: Option<u64>,
    total: u64,
}

impl WrapCounter {
    /// The widened cumulative value so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn update(&mut self, v: FieldValue) -> u64 {
        match self.last_raw {
            None => self.total = v.value,
            Some(last) => {
                let delta = if v.value >= last {
                    v.value - last
                } else if v.is_u32 && last <= u64::from(u32::MAX) {
                    (u64::from(u32::MAX) - last) + v.value + 1
                } else {
                    // A 64-bit counter going backwards: a reset; count from zero.
                    v.value
                };
                self.total = self.total.saturating_add(delta);
            }
        }
        self.last_raw = Some(v.value);
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32v(v: u64) -> FieldValue {
        FieldValue {
            value: v,
            is_u32: true,
        }
    }

    #[test]
    fn wraps_u32() {
        let mut c = WrapCounter::default();
        assert_eq!(c.update(u32v(4_000_000_000)), 4_000_000_000);
        assert_eq!(c.update(u32v(4_294_967_295)), 4_294_967_295);
        // Wrapped: +1 to 0, then +10.
        assert_eq!(c.update(u32v(10)), 4_294_967_306);
        assert_eq!(c.update(u32v(20)), 4_294_967_316);
    }

    #[test]
    fn u64_reset_counts_from_zero() {
        let mut c = WrapCounter::default();
        let v = |x| FieldValue {
            value: x,
            is_u32: false,
        };
        c.update(v(1000));
        assert_eq!(c.update(v(1500)), 1500);
        assert_eq!(c.update(v(100)), 1600);
    }
}
