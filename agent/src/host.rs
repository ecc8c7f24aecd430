//! Host collector: CPU (total and per core), memory and load through sysinfo (its own
//! NVML loader is compiled out), network interfaces from sysfs (sysinfo has no drops).

use std::path::Path;

use servescope_proto::v1::{sample, HostInfo, HostSample};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use crate::collector::{CallCosts, Collector};
use crate::netdev::NetdevReader;

pub struct HostCollector {
    sys: System,
    net: NetdevReader,
}

impl HostCollector {
    pub fn new(sysfs_root: &Path) -> Result<Self, String> {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_usage())
                .with_memory(MemoryRefreshKind::everything()),
        )
        .map_err(|e| format!("sysinfo: {e}"))?;
        Ok(HostCollector {
            sys,
            net: NetdevReader::new(sysfs_root),
        })
    }

    pub fn info(&mut self) -> HostInfo {
        let (ifaces, _) = self.net.read();
        HostInfo {
            os: System::long_os_version().unwrap_or_default(),
            kernel: System::kernel_version().unwrap_or_default(),
            cpu_count: u32::try_from(self.sys.cpus().len()).unwrap_or(u32::MAX),
            memory_total_bytes: self.sys.total_memory(),
            net_interfaces: ifaces.into_iter().map(|i| i.name).collect(),
        }
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &'static str {
        "host"
    }

    fn sample(&mut self, costs: &CallCosts) -> Option<sample::Data> {
        costs.time("host.cpu", || self.sys.refresh_cpu_usage());
        costs.time("host.memory", || {
            self.sys
                .refresh_memory_specifics(MemoryRefreshKind::everything())
        });
        let load = System::load_average().unwrap_or_default();
        let (net, errors) = costs.time("host.netdev", || self.net.read());
        Some(sample::Data::Host(HostSample {
            cpu_total_pct: self.sys.global_cpu_usage(),
            cpu_per_core_pct: self.sys.cpus().iter().map(|c| c.usage()).collect(),
            memory_total_bytes: self.sys.total_memory(),
            memory_used_bytes: self.sys.used_memory(),
            memory_available_bytes: self.sys.available_memory(),
            swap_used_bytes: self.sys.used_swap(),
            load1: load.one,
            load5: load.five,
            load15: load.fifteen,
            net,
            errors,
        }))
    }
}
