//! The two steps every direct NVML call of this collector takes (the calls
//! nvml-wrapper does not offer, or offers at a cost): resolve the symbol from the
//! loaded library, and turn its return code into a typed error.

use nvml_wrapper::error::NvmlError;
use nvml_wrapper_sys::bindings as sys;

/// A symbol of the loaded NVML, or `FailedToLoadSymbol` (an older driver).
pub fn sym<T>(s: &Result<T, libloading::Error>) -> Result<&T, NvmlError> {
    s.as_ref()
        .map_err(|e| NvmlError::FailedToLoadSymbol(e.to_string()))
}

/// `Ok` on `NVML_SUCCESS`, else the error the code names.
pub fn check(r: sys::nvmlReturn_t) -> Result<(), NvmlError> {
    if r == sys::nvmlReturn_enum_NVML_SUCCESS {
        Ok(())
    } else {
        Err(NvmlError::from(r))
    }
}
