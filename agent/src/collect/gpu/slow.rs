//! The slow GPU sampler: per-process GPU memory, ECC totals and remapped rows on
//! their own thread and cadence; the fast sampler attaches the latest result.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use servescope_proto::v1::{FieldError, GpuProcess, GpuReading};

use super::calls::{Call, CallNames};
use crate::clock::now_ns;
use crate::collect::{CallCosts, EventSource, RunContext};

/// Latest slow readings for one GPU.
#[derive(Debug, Clone, Default)]
pub struct SlowState {
    pub index: u32,
    pub t_ns: u64,
    pub processes: Vec<GpuProcess>,
    pub ecc_corrected: Option<u64>,
    pub ecc_uncorrected: Option<u64>,
    pub remapped: Option<(u32, u32, bool, bool)>,
    pub errors: Vec<FieldError>,
}

impl SlowState {
    pub fn apply(&self, r: &mut GpuReading) {
        r.processes.clone_from(&self.processes);
        r.processes_t_ns = self.t_ns;
        r.ecc_corrected_total = self.ecc_corrected;
        r.ecc_uncorrected_total = self.ecc_uncorrected;
        if let Some((c, u, p, f)) = self.remapped {
            r.remapped_rows_correctable = Some(c);
            r.remapped_rows_uncorrectable = Some(u);
            r.remapped_rows_pending = Some(p);
            r.remapped_rows_failure = Some(f);
        }
        r.errors.extend(self.errors.iter().cloned());
    }
}

/// Name of a process from /proc/<pid>/comm (bounded), or "" when not visible.
pub fn process_name(pid: u32) -> String {
    use std::io::Read;
    let mut buf = [0u8; 64];
    let n = std::fs::File::open(format!("/proc/{pid}/comm"))
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).trim().to_string()
}

fn remapped_rows(nvml: &Nvml, dev: &Device<'_>) -> Result<(u32, u32, bool, bool), NvmlError> {
    let sym = nvml
        .lib()
        .nvmlDeviceGetRemappedRows
        .as_ref()
        .map_err(|e| NvmlError::FailedToLoadSymbol(e.to_string()))?;
    let (mut c, mut u, mut p, mut f) = (0u32, 0u32, 0u32, 0u32);
    // SAFETY: live device handle, four out-parameters we own.
    let ret = unsafe { sym(dev.handle(), &mut c, &mut u, &mut p, &mut f) };
    if ret != nvml_wrapper_sys::bindings::nvmlReturn_enum_NVML_SUCCESS {
        return Err(NvmlError::from(ret));
    }
    Ok((c, u, p != 0, f != 0))
}

fn keep<T>(errors: &mut Vec<FieldError>, field: &str, r: Result<T, NvmlError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(NvmlError::NotSupported) => None,
        Err(e) => {
            errors.push(FieldError {
                field: field.into(),
                error: super::describe(&e),
            });
            None
        }
    }
}

fn read_one(nvml: &Nvml, index: u32, calls: &CallNames, costs: &CallCosts) -> SlowState {
    let mut st = SlowState {
        index,
        t_ns: now_ns(),
        ..Default::default()
    };
    let dev = match calls.time(costs, Call::Device, || nvml.device_by_index(index)) {
        Ok(d) => d,
        Err(e) => {
            st.errors.push(FieldError {
                field: "device".into(),
                error: super::describe(&e),
            });
            return st;
        }
    };
    let procs = calls.time(costs, Call::Processes, || dev.running_compute_processes());
    if let Some(ps) = keep(&mut st.errors, "processes", procs) {
        st.processes = ps
            .into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                name: process_name(p.pid),
                used_bytes: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => b,
                    UsedGpuMemory::Unavailable => 0,
                },
            })
            .collect();
    }
    st.ecc_corrected = keep(
        &mut st.errors,
        "ecc_corrected",
        calls.time(costs, Call::EccCorrected, || {
            dev.total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate)
        }),
    );
    st.ecc_uncorrected = keep(
        &mut st.errors,
        "ecc_uncorrected",
        calls.time(costs, Call::EccUncorrected, || {
            dev.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate)
        }),
    );
    st.remapped = keep(
        &mut st.errors,
        "remapped_rows",
        calls.time(costs, Call::RemappedRows, || remapped_rows(nvml, &dev)),
    );
    st
}

/// The slow sampler: reads every GPU each `interval`; results land in `out`, where
/// the fast sampler picks them up.
pub struct SlowSampler {
    nvml: Arc<Nvml>,
    gpus: Vec<(u32, CallNames)>,
    interval: Duration,
    out: Arc<Mutex<Vec<SlowState>>>,
}

impl SlowSampler {
    pub fn new(
        nvml: Arc<Nvml>,
        indices: &[u32],
        interval: Duration,
        out: Arc<Mutex<Vec<SlowState>>>,
    ) -> Self {
        SlowSampler {
            nvml,
            gpus: indices.iter().map(|&i| (i, CallNames::new(i))).collect(),
            interval,
            out,
        }
    }
}

impl EventSource for SlowSampler {
    fn name(&self) -> &'static str {
        "collect-gpu-slow"
    }

    fn run(self: Box<Self>, ctx: RunContext) {
        loop {
            let states: Vec<SlowState> = self
                .gpus
                .iter()
                .map(|(i, calls)| read_one(&self.nvml, *i, calls, &ctx.costs))
                .collect();
            if let Ok(mut g) = self.out.lock() {
                *g = states;
            }
            if ctx.shutdown.sleep(self.interval) {
                break;
            }
        }
    }
}
