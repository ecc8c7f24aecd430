//! RDMA devices (EFA, mlx5, …) from sysfs: discovery, per-second counter
//! samples, and GPU ↔ NIC topology.
//!
//! Discovery fixes the schema (devices, ports, counter names); [`RdmaCollector::sample`]
//! then reads every counter of a port in one burst (EFA refreshes its statistics
//! per read burst, cached for `hw_counters/lifespan` ms), plus the port state and
//! the netdev's `operstate`/`carrier` — the EFA driver always says ACTIVE/LinkUp,
//! the netdev tells the truth. Counter files are read through precomputed paths
//! with descriptors kept open (see [`crate::collect::sysfs`]).

mod discover;
#[cfg(any(test, feature = "fixture"))]
pub mod fixture;
mod topology;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use servescope_proto::v1::{
    sample, FieldError, GpuTopology, RdmaDeviceInfo, RdmaDeviceReading, RdmaPortReading,
    RdmaSample, SampleKind,
};

use crate::collect::sysfs::parse::{self, parse_port_state, parse_text, parse_u64};
use crate::collect::sysfs::{new_buf, read_carrier, AttrBuf, AttrFile};
use crate::collect::{Cadence, CallCosts, Collector};

pub use topology::{
    common_prefix_len, match_gpu, shares_pcie_switch, topology, MIN_SHARED_SWITCH_DEPTH,
};

/// Why discovery failed as a whole (per-device problems become notes instead).
#[derive(Debug, thiserror::Error)]
pub enum RdmaError {
    #[error("sysfs root {} is not accessible: {source}", path.display())]
    SysfsRoot {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot list RDMA devices in {}: {source}", path.display())]
    ListDevices {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How often the agent's periodic sampler reads device-level counters (EFA: 12
/// admin-command and control-path error counts per device, which change when a
/// queue pair, memory region or address handle is set up, not per transfer).
/// Port counters, port state and the netdev are read every sample. On a p5 this
/// leaves 384 of the 1 100 files read each second to once in ten.
pub const DEVICE_COUNTERS_EVERY: Duration = Duration::from_secs(10);

/// Collects RDMA counters for the devices found at discovery.
#[derive(Debug)]
pub struct RdmaCollector {
    root: PathBuf,
    devices: Vec<DeviceFiles>,
    notes: Vec<String>,
    /// When device-level counters are read (from discovery on; every sample
    /// unless [`Self::with_device_counters_every`]).
    device_reads: Cadence,
}

#[derive(Debug)]
struct DeviceFiles {
    info: RdmaDeviceInfo,
    /// In the order of `info.device_counter_names`.
    counters: Vec<AttrFile>,
    ports: Vec<PortFiles>,
    /// The last device-level values and their errors, repeated until due again.
    last: Option<(Vec<u64>, Vec<FieldError>)>,
}

#[derive(Debug)]
struct PortFiles {
    /// In the order of the port's `counter_names`.
    counters: Vec<AttrFile>,
    state: AttrFile,
    /// `<root>/class/net/<netdev>/{operstate,carrier}`; `None` without a netdev.
    netdev: Option<(AttrFile, AttrFile)>,
}

impl RdmaCollector {
    /// Enumerates every device under `<sysfs_root>/class/infiniband`. A missing
    /// directory is not an error: zero devices and a note.
    pub fn discover(sysfs_root: &Path) -> Result<RdmaCollector, RdmaError> {
        let found = discover::discover(sysfs_root)?;
        let devices = found
            .devices
            .into_iter()
            .map(|d| DeviceFiles::new(sysfs_root, &d.dir, d.info))
            .collect();
        Ok(RdmaCollector {
            root: sysfs_root.to_path_buf(),
            devices,
            notes: found.notes,
            device_reads: Cadence::new(Instant::now(), Duration::ZERO),
        })
    }

    /// Reads device-level counters every `every` (the first sample reads them);
    /// samples in between repeat them with `values_stale` set.
    pub fn with_device_counters_every(mut self, every: Duration) -> Self {
        self.device_reads = Cadence::new(Instant::now(), every);
        self
    }

    /// What discovery noticed: missing directories, unreadable attributes, skipped devices.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The sysfs root this collector reads.
    pub fn sysfs_root(&self) -> &Path {
        &self.root
    }

    /// Devices, ports and counter names (the schema of [`Self::sample`]).
    pub fn inventory(&self) -> Vec<RdmaDeviceInfo> {
        self.devices.iter().map(|d| d.info.clone()).collect()
    }

    /// GPU topology against this collector's devices; see [`topology()`].
    pub fn gpu_topology(&self, gpus: &[(u32, String)]) -> Vec<GpuTopology> {
        topology(&self.root, gpus, &self.inventory())
    }

    /// Reads every counter of every device and port. Unreadable or malformed values
    /// are 0 and listed in the reading's `errors`; nothing else is lost.
    pub fn sample(&mut self) -> RdmaSample {
        self.sample_at(Instant::now())
    }

    /// [`Self::sample`] as at `now` (for the device-counter cadence).
    pub fn sample_at(&mut self, now: Instant) -> RdmaSample {
        let device_due = self.device_reads.take(now);
        let mut buf = new_buf();
        RdmaSample {
            devices: self
                .devices
                .iter_mut()
                .map(|d| d.sample(&mut buf, device_due))
                .collect(),
        }
    }
}

/// [`RdmaCollector`] on the collector tick grid.
pub struct RdmaSampler(pub RdmaCollector);

impl Collector for RdmaSampler {
    /// Named after the one kind it samples.
    fn name(&self) -> &'static str {
        SampleKind::Rdma.name()
    }

    fn sample(&mut self, _: &CallCosts) -> Option<sample::Data> {
        Some(sample::Data::Rdma(self.0.sample()))
    }
}

impl DeviceFiles {
    fn new(root: &Path, dir: &Path, info: RdmaDeviceInfo) -> Self {
        let counters = info
            .device_counter_names
            .iter()
            .map(|n| AttrFile::new(dir.join("hw_counters").join(n)))
            .collect();
        let ports = info
            .ports
            .iter()
            .map(|p| {
                let port_dir = dir.join("ports").join(p.port.to_string());
                let netdev = (!p.netdev.is_empty()).then(|| {
                    let nd = root.join("class/net").join(&p.netdev);
                    (
                        AttrFile::new(nd.join("operstate")),
                        AttrFile::new(nd.join("carrier")),
                    )
                });
                PortFiles {
                    counters: p
                        .counter_names
                        .iter()
                        .map(|n| AttrFile::new(port_dir.join(n)))
                        .collect(),
                    state: AttrFile::new(port_dir.join("state")),
                    netdev,
                }
            })
            .collect();
        DeviceFiles {
            info,
            counters,
            ports,
            last: None,
        }
    }

    fn sample(&mut self, buf: &mut AttrBuf, device_due: bool) -> RdmaDeviceReading {
        let dev = &self.info.name;
        let (values, errors, values_stale) = match &self.last {
            Some((values, errors)) if !device_due => (values.clone(), errors.clone(), true),
            _ => {
                let mut errors = Vec::new();
                let values = read_counters(
                    &mut self.counters,
                    &self.info.device_counter_names,
                    |name| format!("{dev}/hw_counters/{name}"),
                    buf,
                    &mut errors,
                );
                self.last = Some((values.clone(), errors.clone()));
                (values, errors, false)
            }
        };
        let ports = self
            .ports
            .iter_mut()
            .zip(&self.info.ports)
            .map(|(files, info)| {
                let port = info.port;
                let mut errors = Vec::new();
                // The counter burst first, then the slower-moving state.
                let values = read_counters(
                    &mut files.counters,
                    &info.counter_names,
                    |name| format!("{dev}/{port}/{name}"),
                    buf,
                    &mut errors,
                );
                let field = |what: &str| format!("{dev}/{port}/{what}");
                let state = read_text(&mut files.state, parse_port_state, buf)
                    .unwrap_or_else(|e| push_err(&mut errors, field("state"), e));
                let (mut operstate, mut carrier) = (String::new(), None);
                if let Some((op, car)) = &mut files.netdev {
                    let nd = &info.netdev;
                    operstate = read_text(op, parse_text, buf).unwrap_or_else(|e| {
                        push_err(&mut errors, field(&format!("netdev/{nd}/operstate")), e)
                    });
                    carrier = read_carrier(car, buf).unwrap_or_else(|e| {
                        push_err(&mut errors, field(&format!("netdev/{nd}/carrier")), e)
                    });
                }
                RdmaPortReading {
                    port,
                    values,
                    errors,
                    state,
                    netdev_operstate: operstate,
                    netdev_carrier: carrier,
                }
            })
            .collect();
        RdmaDeviceReading {
            device: dev.clone(),
            values,
            ports,
            errors,
            values_stale,
        }
    }
}

/// Whether a reading's `errors` (device- or port-level, as read) name counter
/// `name` (as named in the inventory): its value is then a placeholder 0.
pub fn counter_failed(errors: &[FieldError], name: &str) -> bool {
    errors.iter().any(|e| {
        e.field
            .strip_suffix(name)
            .is_some_and(|head| head.is_empty() || head.ends_with('/'))
    })
}

/// Records an error and yields the default value for the field.
fn push_err<T: Default>(errors: &mut Vec<FieldError>, field: String, error: String) -> T {
    errors.push(FieldError { field, error });
    T::default()
}

/// Reads counters in order; failures are 0 plus a [`FieldError`] named by `field`.
pub(crate) fn read_counters(
    files: &mut [AttrFile],
    names: &[String],
    field: impl Fn(&str) -> String,
    buf: &mut AttrBuf,
    errors: &mut Vec<FieldError>,
) -> Vec<u64> {
    files
        .iter_mut()
        .zip(names)
        .map(|(file, name)| {
            let parsed = match file.read(buf) {
                Ok(raw) => parse_u64(raw).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            parsed.unwrap_or_else(|e| push_err(errors, field(name), e))
        })
        .collect()
}

fn read_text(
    file: &mut AttrFile,
    parse: fn(&[u8]) -> Result<String, parse::ParseError>,
    buf: &mut AttrBuf,
) -> Result<String, String> {
    let raw = file.read(buf).map_err(|e| e.to_string())?;
    parse(raw).map_err(|e| e.to_string())
}
