//! GPU collector through NVML (nvml-wrapper, loaded at run time).
//!
//! Three producers: the fast sampler ([`GpuCollector`]: memory, utilization, power
//! every sample interval; clocks, temperature, throttle reasons, energy and
//! PCIe/NVLink byte counters at their own cadences), the slow sampler ([`SlowSampler`]: per-process
//! memory, ECC, remapped rows — calls that take up to ~150 ms with a CUDA process
//! present, on their own cadence so the fast signals keep their rate), and the XID
//! event waiter ([`XidSource`], blocking). The fast sampler's NVML reads fill a
//! [`raw::RawReading`]; the pure [`build_reading`] makes the sample from it. Every
//! NVML call is timed per GPU ([`calls`]). A process starting on a GPU puts it in
//! a burst ([`burst`], shared through [`BurstBoard`]): its process list and byte
//! counters are then read at the fast tick until it has served for a while.
//! No NVML, no driver or no GPU: [`init`] says why and the agent runs on.

pub mod board;
mod build;
pub mod burst;
pub mod calls;
mod events;
mod ffi;
pub mod fields;
pub mod gpm;
pub mod memory;
pub mod own;
pub mod procs;
pub mod raw;
mod sampler;
pub mod schedule;
mod slow;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use servescope_proto::v1::{Availability, GpuInfo};

pub use board::{BurstBoard, BURST_INTERVAL};
pub use build::{build_reading, GpuState};
pub use events::XidSource;
pub use sampler::GpuCollector;
pub use schedule::{
    ENERGY_INTERVAL, HEALTH_EVERY, NVLINK_FIELDS_INTERVAL, PCIE_LINK_EVERY, POWER_INTERVAL,
    SLOW_FIELDS_INTERVAL,
};
pub use slow::{SlowSampler, SlowState};

/// What NVML initialisation found.
pub struct GpuInit {
    pub availability: Availability,
    pub gpus: Vec<GpuInfo>,
    pub driver_version: String,
    pub cuda_driver_version: String,
    pub nvml_version: String,
    pub nvml: Option<Arc<Nvml>>,
}

/// Describes an NVML error for a person.
pub fn describe(e: &NvmlError) -> String {
    match e {
        NvmlError::LibloadingError(l) => format!("libnvidia-ml.so.1 could not be loaded: {l}"),
        NvmlError::DriverNotLoaded => "the NVIDIA driver is not loaded".into(),
        NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".into(),
        NvmlError::GpuLost => "the GPU has fallen off the bus (GPU lost)".into(),
        NvmlError::LibraryNotFound => "NVML shared library not found".into(),
        other => other.to_string(),
    }
}

/// Loads NVML (from `lib` if given) and takes the GPU inventory.
pub fn init(lib: Option<&Path>) -> GpuInit {
    let res = match lib {
        Some(p) => Nvml::builder().lib_path(p.as_os_str()).init(),
        None => Nvml::init(),
    };
    let nvml = match res {
        Ok(n) => n,
        Err(e) => return unavailable(describe(&e)),
    };
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            return unavailable(format!(
                "NVML loaded but cannot count GPUs: {}",
                describe(&e)
            ))
        }
    };
    let mut gpus = Vec::new();
    let mut problems = Vec::new();
    for i in 0..count {
        match nvml.device_by_index(i) {
            Ok(d) => {
                let mem = d.memory_info().map(|m| m.total).unwrap_or(0);
                let links = fields::read(&nvml, &d, &[(fields::NVLINK_LINK_COUNT, 0)])
                    .ok()
                    .and_then(|v| v.into_iter().next())
                    .and_then(|r| r.ok())
                    .map(|v| u32::try_from(v.value).unwrap_or(0))
                    .unwrap_or(0);
                gpus.push(GpuInfo {
                    index: i,
                    name: d.name().unwrap_or_default(),
                    uuid: d.uuid().unwrap_or_default(),
                    pci_bus_id: d
                        .pci_info()
                        .map(|p| p.bus_id.to_ascii_lowercase())
                        .unwrap_or_default(),
                    numa_node: d.numa_node_id().ok().and_then(|n| i32::try_from(n).ok()),
                    memory_total_bytes: mem,
                    nvlink_links: links,
                    architecture: d.architecture().map(|a| a.to_string()).unwrap_or_default(),
                });
            }
            Err(e) => problems.push(format!("GPU {i}: {}", describe(&e))),
        }
    }
    let detail = if count == 0 {
        "NVML loaded, but it reports 0 GPUs".to_string()
    } else {
        let mut d = format!("{} GPU(s) via NVML", gpus.len());
        if !problems.is_empty() {
            d.push_str(&format!("; {}", problems.join("; ")));
        }
        d
    };
    GpuInit {
        availability: Availability {
            available: !gpus.is_empty(),
            detail,
        },
        gpus,
        driver_version: nvml.sys_driver_version().unwrap_or_default(),
        cuda_driver_version: nvml
            .sys_cuda_driver_version()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
            .unwrap_or_default(),
        nvml_version: nvml.sys_nvml_version().unwrap_or_default(),
        nvml: Some(Arc::new(nvml)),
    }
}

fn unavailable(reason: String) -> GpuInit {
    GpuInit {
        availability: Availability {
            available: false,
            detail: reason,
        },
        gpus: Vec::new(),
        driver_version: String::new(),
        cuda_driver_version: String::new(),
        nvml_version: String::new(),
        nvml: None,
    }
}
