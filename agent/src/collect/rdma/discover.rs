//! Discovery of RDMA devices under `<sysfs>/class/infiniband` (the I/O half;
//! parsing is in [`super::parse`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use servescope_proto::v1::{RdmaDeviceInfo, RdmaPortInfo};

use super::RdmaError;
use crate::collect::sysfs::parse::{
    self, parse_numa_node, parse_port_state, parse_text, pci_path_from_path,
};
use crate::collect::sysfs::{new_buf, read_attr, AttrBuf, ReadError};

/// At most this many entries are taken from any sysfs directory listing.
const MAX_DIR_ENTRIES: usize = 4096;
/// The per-directory refresh interval file, not a counter.
const LIFESPAN: &str = "lifespan";

/// A device found at discovery: its resolved sysfs directory and what it is.
pub(crate) struct DiscoveredDevice {
    pub dir: PathBuf,
    pub info: RdmaDeviceInfo,
}

pub(crate) struct Discovery {
    pub devices: Vec<DiscoveredDevice>,
    pub notes: Vec<String>,
}

/// Sorted UTF-8 names in `dir` (files and links, or directories), bounded.
fn list_names(dir: &Path, want_dirs: bool) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)?.take(MAX_DIR_ENTRIES) {
        let entry = entry?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir != want_dirs {
            continue;
        }
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Counter file names in a `hw_counters` or `counters` directory (no `lifespan`);
/// a missing directory has none.
fn counter_names(dir: &Path) -> io::Result<Vec<String>> {
    match list_names(dir, false) {
        Ok(mut names) => {
            names.retain(|n| n != LIFESPAN);
            Ok(names)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Reads and parses one attribute; `Ok(None)` when the file does not exist.
fn read_parsed<T>(
    path: &Path,
    buf: &mut AttrBuf,
    parse: impl Fn(&[u8]) -> Result<T, parse::ParseError>,
) -> Result<Option<T>, String> {
    match read_attr(path, buf) {
        Ok(raw) => parse(raw).map(Some).map_err(|e| e.to_string()),
        Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn basename(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn discover(root: &Path) -> Result<Discovery, RdmaError> {
    // Fail early on a wrong --sysfs-root rather than reporting "no devices".
    fs::metadata(root).map_err(|source| RdmaError::SysfsRoot {
        path: root.to_path_buf(),
        source,
    })?;
    let class = root.join("class/infiniband");
    let mut out = Discovery {
        devices: Vec::new(),
        notes: Vec::new(),
    };
    let names = match fs::read_dir(&class) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            out.notes.push(format!(
                "rdma: no RDMA devices ({} does not exist)",
                class.display()
            ));
            return Ok(out);
        }
        Err(source) => {
            return Err(RdmaError::ListDevices {
                path: class,
                source,
            })
        }
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .take(MAX_DIR_ENTRIES)
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            names
        }
    };
    if names.is_empty() {
        out.notes
            .push(format!("rdma: no RDMA devices under {}", class.display()));
    }
    let mut buf = new_buf();
    for name in names {
        match fs::canonicalize(class.join(&name)) {
            Ok(dir) => {
                let info = device_info(&name, &dir, &mut buf, &mut out.notes);
                out.devices.push(DiscoveredDevice { dir, info });
            }
            Err(e) => out
                .notes
                .push(format!("rdma: skipped device {name}: cannot resolve: {e}")),
        }
    }
    Ok(out)
}

fn device_info(
    name: &str,
    dir: &Path,
    buf: &mut AttrBuf,
    notes: &mut Vec<String>,
) -> RdmaDeviceInfo {
    let mut note = |what: &str, err: String| notes.push(format!("rdma: {name}: {what}: {err}"));
    let mut info = RdmaDeviceInfo {
        name: name.to_owned(),
        ..Default::default()
    };
    let device_link = dir.join("device");
    match fs::canonicalize(&device_link) {
        Ok(pci_dev) => {
            info.pci_address = basename(&pci_dev);
            info.pci_path = pci_path_from_path(&pci_dev);
        }
        // Virtual devices (rxe, siw) have no parent device.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => note("device link", e.to_string()),
    }
    match fs::read_link(device_link.join("driver")) {
        Ok(target) => info.driver = basename(&target),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => note("driver link", e.to_string()),
    }
    match read_parsed(&device_link.join("numa_node"), buf, parse_numa_node) {
        Ok(numa) => info.numa_node = numa.flatten(),
        Err(e) => note("numa_node", e),
    }
    match counter_names(&dir.join("hw_counters")) {
        Ok(names) => info.device_counter_names = names,
        Err(e) => note("hw_counters", e.to_string()),
    }
    // The netdev of the device (EFA: the ENA interface): first entry of device/net.
    let device_netdev = match list_names(&device_link.join("net"), true) {
        Ok(names) => names.into_iter().next().unwrap_or_default(),
        Err(_) => String::new(),
    };
    let ports = match list_names(&dir.join("ports"), true) {
        Ok(names) => {
            let mut ports: Vec<u32> = names.iter().filter_map(|n| n.parse().ok()).collect();
            ports.sort_unstable();
            ports
        }
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                note("ports", e.to_string());
            }
            Vec::new()
        }
    };
    for port in ports {
        let port_dir = dir.join("ports").join(port.to_string());
        let info_port = port_info(port, &port_dir, &device_netdev, buf, &mut note);
        info.ports.push(info_port);
    }
    info
}

fn port_info(
    port: u32,
    dir: &Path,
    device_netdev: &str,
    buf: &mut AttrBuf,
    note: &mut impl FnMut(&str, String),
) -> RdmaPortInfo {
    let mut text =
        |file: &str, parse: fn(&[u8]) -> Result<String, parse::ParseError>| match read_parsed(
            &dir.join(file),
            buf,
            parse,
        ) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                note(&format!("port {port} {file}"), e);
                String::new()
            }
        };
    let state = text("state", parse_port_state);
    let phys_state = text("phys_state", parse_port_state);
    let rate = text("rate", parse_text);
    let link_layer = text("link_layer", parse_text);
    // RoCE ports name their own netdev (elsewhere the file is absent or refuses
    // to be read: not worth a note); otherwise use the device's.
    let netdev = match read_parsed(&dir.join("gid_attrs/ndevs/0"), buf, parse_text) {
        Ok(Some(n)) => n,
        _ => device_netdev.to_owned(),
    };
    let mut counter_names = Vec::new();
    for sub in ["hw_counters", "counters"] {
        match self::counter_names(&dir.join(sub)) {
            Ok(names) => counter_names.extend(names.into_iter().map(|n| format!("{sub}/{n}"))),
            Err(e) => note(&format!("port {port} {sub}"), e.to_string()),
        }
    }
    RdmaPortInfo {
        port,
        state,
        phys_state,
        rate,
        link_layer,
        netdev,
        counter_names,
    }
}
