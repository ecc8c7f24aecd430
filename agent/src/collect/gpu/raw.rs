//! What one tick's NVML reads returned for one GPU, as plain values: each field is
//! its value or why it has none. [`super::sampler`] fills it in; the pure
//! [`super::build::build_reading`] turns it into a `GpuReading`.

use nvml_wrapper::error::NvmlError;

use super::fields::FieldValue;
use super::gpm::GpmTotals;

/// Why one read gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The GPU or driver does not offer it: no value, and no error reported.
    NotSupported,
    /// The read failed; what a person is shown.
    Failed(String),
}

impl ReadError {
    /// What a person is shown, also for [`ReadError::NotSupported`].
    pub fn describe(&self) -> String {
        match self {
            ReadError::NotSupported => super::describe(&NvmlError::NotSupported),
            ReadError::Failed(why) => why.clone(),
        }
    }
}

impl From<NvmlError> for ReadError {
    fn from(e: NvmlError) -> Self {
        match e {
            NvmlError::NotSupported => ReadError::NotSupported,
            other => ReadError::Failed(super::describe(&other)),
        }
    }
}

/// One read's outcome.
pub type Read<T> = Result<T, ReadError>;

/// Converts an NVML result.
pub fn read<T>(r: Result<T, NvmlError>) -> Read<T> {
    r.map_err(ReadError::from)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawMemory {
    pub used: u64,
    pub reserved: u64,
    pub free: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawUtilization {
    pub gpu: u32,
    pub memory: u32,
}

/// One GPU's reads of one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReading {
    pub index: u32,
    /// The reads, or why the device handle could not be had (nothing else read).
    pub device: Result<RawReads, String>,
}

/// The reads made through a live device handle.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReads {
    /// `None`: not due this tick (the last values repeat, marked stale).
    pub memory: Option<Read<RawMemory>>,
    pub utilization: Read<RawUtilization>,
    pub sm_clock_mhz: Read<u32>,
    pub mem_clock_mhz: Read<u32>,
    pub power_mw: Read<u32>,
    /// `None`: not due this tick (the last value repeats, marked stale).
    pub energy_mj: Option<Read<u64>>,
    pub temperature_c: Read<u32>,
    pub throttle_reasons: Read<u64>,
    /// `None`: this GPU has no GPM.
    pub gpm: Option<RawGpm>,
    /// NVML field values; `None`: not read this tick (GPM gave the byte counters).
    pub fields: Option<Read<RawFields>>,
}

/// The GPM byte counters of one tick.
#[derive(Debug, Clone, PartialEq)]
pub enum RawGpm {
    /// Not due: the last totals repeat, marked stale.
    NotDue,
    /// Cumulative totals from a fresh GPM sample.
    Read(Read<GpmTotals>),
}

/// The field-value byte counters of one tick (GPUs without GPM, or GPM failed).
#[derive(Debug, Clone, PartialEq)]
pub struct RawFields {
    pub pcie_tx: Read<FieldValue>,
    pub pcie_rx: Read<FieldValue>,
    /// Per link (tx, rx), KiB; `None`: not due this tick (the last totals repeat).
    pub nvlink: Option<Vec<(Read<FieldValue>, Read<FieldValue>)>>,
}
