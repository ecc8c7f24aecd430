//! PCIe and NVLink byte counters from GPU Performance Monitoring (GPM, Hopper and
//! newer). NVML's PCIe field values (197/198) are 32-bit and wrap every 4 GiB — at
//! the ~55 GB/s of a pinned host→device copy on an H200 that is every 78 ms, more
//! often than a 100 ms sampler can see — and each read costs ~135 µs of CPU per
//! field. A GPM sample costs ~32 µs and the metrics between two samples are rates
//! over 64-bit internal counters, so integrating rate × interval gives cumulative
//! bytes that never wrap. Measured on an H200 (driver 580): see scripts/gpu_check.sh.

use std::sync::Arc;
use std::time::Instant;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings as sys;

use super::ffi::{check, sym};

/// GPM metric ids (nvml.h `nvmlGpmMetricId_t`), all in MiB/s.
const METRICS: [u32; 4] = [
    sys::nvmlGpmMetricId_t_NVML_GPM_METRIC_PCIE_TX_PER_SEC,
    sys::nvmlGpmMetricId_t_NVML_GPM_METRIC_PCIE_RX_PER_SEC,
    sys::nvmlGpmMetricId_t_NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC,
    sys::nvmlGpmMetricId_t_NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC,
];
const MIB: f64 = 1_048_576.0;

/// Cumulative bytes since the counter was created; None where GPM does not offer
/// the metric (NVLink on a GPU without links).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpmTotals {
    pub pcie_tx: Option<u64>,
    pub pcie_rx: Option<u64>,
    pub nvlink_tx: Option<u64>,
    pub nvlink_rx: Option<u64>,
}

/// Two GPM sample buffers used alternately, and the running byte totals.
pub struct GpmCounter {
    nvml: Arc<Nvml>,
    samples: [sys::nvmlGpmSample_t; 2],
    /// Index of the sample holding the previous reading.
    prev: usize,
    prev_t: Instant,
    totals: [f64; 4],
    ok: [bool; 4],
    req: Box<sys::nvmlGpmMetricsGet_t>,
}

// SAFETY: the sample handles are owned by this value alone and only used through
// `&mut self`; NVML is thread-safe.
unsafe impl Send for GpmCounter {}

impl GpmCounter {
    /// Starts counting on `dev`; `Err(NotSupported)` on GPUs without GPM.
    pub fn new(nvml: Arc<Nvml>, dev: &Device<'_>) -> Result<Self, NvmlError> {
        if !dev.gpm_support()? {
            return Err(NvmlError::NotSupported);
        }
        let alloc = sym(&nvml.lib().nvmlGpmSampleAlloc)?;
        let mut samples = [std::ptr::null_mut(); 2];
        for s in &mut samples {
            // SAFETY: alloc writes a fresh handle into `s`.
            if let Err(e) = check(unsafe { alloc(s) }) {
                free_samples(&nvml, &samples);
                return Err(e);
            }
        }
        // SAFETY: plain old data; NVML fills it in.
        let mut req: Box<sys::nvmlGpmMetricsGet_t> = Box::new(unsafe { std::mem::zeroed() });
        req.version = sys::NVML_GPM_METRICS_GET_VERSION;
        let mut c = GpmCounter {
            nvml,
            samples,
            prev: 0,
            prev_t: Instant::now(),
            totals: [0.0; 4],
            ok: [false; 4],
            req,
        };
        c.take(dev, 0)?;
        c.prev_t = Instant::now();
        Ok(c)
    }

    fn take(&mut self, dev: &Device<'_>, slot: usize) -> Result<(), NvmlError> {
        let get = sym(&self.nvml.lib().nvmlGpmSampleGet)?;
        // SAFETY: the device handle is live; the sample was allocated by this NVML.
        check(unsafe { get(dev.handle(), self.samples[slot]) })
    }

    /// Takes a sample, adds rate × elapsed to the totals, returns them.
    pub fn update(&mut self, dev: &Device<'_>) -> Result<GpmTotals, NvmlError> {
        let cur = 1 - self.prev;
        self.take(dev, cur)?;
        let now = Instant::now();
        let dt = now.duration_since(self.prev_t).as_secs_f64();
        let get = sym(&self.nvml.lib().nvmlGpmMetricsGet)?;
        self.req.numMetrics = METRICS.len() as u32;
        self.req.sample1 = self.samples[self.prev];
        self.req.sample2 = self.samples[cur];
        for (m, id) in self.req.metrics.iter_mut().zip(METRICS) {
            m.metricId = id;
        }
        // SAFETY: req is a valid request over two samples of this device.
        check(unsafe { get(&mut *self.req) })?;
        for i in 0..METRICS.len() {
            let m = &self.req.metrics[i];
            if m.nvmlReturn == sys::nvmlReturn_enum_NVML_SUCCESS && m.value.is_finite() {
                self.totals[i] += m.value.max(0.0) * MIB * dt;
                self.ok[i] = true;
            }
        }
        self.prev = cur;
        self.prev_t = now;
        let v = |i: usize| self.ok[i].then(|| self.totals[i] as u64);
        Ok(GpmTotals {
            pcie_tx: v(0),
            pcie_rx: v(1),
            nvlink_tx: v(2),
            nvlink_rx: v(3),
        })
    }
}

fn free_samples(nvml: &Nvml, samples: &[sys::nvmlGpmSample_t]) {
    if let Ok(free) = sym(&nvml.lib().nvmlGpmSampleFree) {
        for s in samples.iter().filter(|s| !s.is_null()) {
            // SAFETY: each non-null handle was allocated by this NVML and is freed once.
            unsafe { free(*s) };
        }
    }
}

impl Drop for GpmCounter {
    fn drop(&mut self) {
        free_samples(&self.nvml, &self.samples);
    }
}
