//! Host collector: CPU (total and per core) and load from procfs with kept
//! descriptors ([`procstat`]), memory through sysinfo (its own NVML loader is
//! compiled out), network interfaces from sysfs (sysinfo has no drops).

pub mod netdev;
pub mod procstat;

use std::path::Path;

use servescope_proto::v1::{sample, HostInfo, HostSample, SampleKind};
use sysinfo::{MemoryRefreshKind, RefreshKind, System};

use crate::collect::{CallCosts, Collector};
use netdev::NetdevReader;
use procstat::ProcStat;

pub struct HostCollector {
    sys: System,
    /// CPU and load; the error when /proc cannot be read.
    cpu: Result<ProcStat, String>,
    net: NetdevReader,
    /// Memory and network are re-read every `slow_every` samples.
    slow_every: u32,
    tick: u32,
    slow: Option<Slow>,
}

/// The slower part of a host sample, repeated until it is read again.
struct Slow {
    t_ns: u64,
    net: Vec<servescope_proto::v1::NetInterfaceReading>,
    errors: Vec<servescope_proto::v1::FieldError>,
}

impl HostCollector {
    /// `slow_every`: re-read memory and network every this many samples (≥ 1).
    pub fn new(sysfs_root: &Path, slow_every: u32) -> Result<Self, String> {
        let sys = System::new_with_specifics(
            RefreshKind::nothing().with_memory(MemoryRefreshKind::everything()),
        )
        .map_err(|e| format!("sysinfo: {e}"))?;
        Ok(HostCollector {
            sys,
            cpu: ProcStat::new(Path::new("/proc")).map_err(|e| e.to_string()),
            net: NetdevReader::new(sysfs_root),
            slow_every: slow_every.max(1),
            tick: 0,
            slow: None,
        })
    }

    pub fn info(&mut self) -> HostInfo {
        let (ifaces, _) = self.net.read();
        HostInfo {
            os: System::long_os_version().unwrap_or_default(),
            kernel: System::kernel_version().unwrap_or_default(),
            cpu_count: u32::try_from(self.cpu.as_ref().map_or(0, ProcStat::cpu_count))
                .unwrap_or(u32::MAX),
            memory_total_bytes: self.sys.total_memory(),
            net_interfaces: ifaces.into_iter().map(|i| i.name).collect(),
        }
    }
}

impl Collector for HostCollector {
    /// Named after the one kind it samples.
    fn name(&self) -> &'static str {
        SampleKind::Host.name()
    }

    fn sample(&mut self, costs: &CallCosts) -> Option<sample::Data> {
        let cpu = match &mut self.cpu {
            Ok(p) => costs
                .time("host.cpu", || p.read())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        if self.slow.is_none() || self.tick.is_multiple_of(self.slow_every) {
            costs.time("host.memory", || {
                self.sys
                    .refresh_memory_specifics(MemoryRefreshKind::everything())
            });
            let (net, errors) = costs.time("host.netdev", || self.net.read());
            self.slow = Some(Slow {
                t_ns: crate::clock::now_ns(),
                net,
                errors,
            });
        }
        self.tick = self.tick.wrapping_add(1);
        let (net, mut errors, slow_t_ns) = match &self.slow {
            Some(s) => (s.net.clone(), s.errors.clone(), s.t_ns),
            None => (Vec::new(), Vec::new(), 0),
        };
        let cpu = cpu.unwrap_or_else(|error| {
            errors.push(servescope_proto::v1::FieldError {
                field: "cpu".into(),
                error,
            });
            Default::default()
        });
        let [load1, load5, load15] = cpu.load;
        Some(sample::Data::Host(HostSample {
            cpu_total_pct: cpu.total_pct,
            cpu_per_core_pct: cpu.per_core_pct,
            memory_total_bytes: self.sys.total_memory(),
            memory_used_bytes: self.sys.used_memory(),
            memory_available_bytes: self.sys.available_memory(),
            swap_used_bytes: self.sys.used_swap(),
            load1,
            load5,
            load15,
            net,
            errors,
            slow_t_ns,
        }))
    }
}
