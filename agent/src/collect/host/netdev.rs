//! Host network interface statistics from `<sysfs>/class/net/*`.
//!
//! Cheap enough for a 100 ms cadence: [`NetdevReader`] caches the interface list
//! and the attribute files (descriptors kept open, see [`crate::collect::sysfs`]), and lists
//! the directory again only every `rescan_every` calls or when an interface
//! vanished. Note that RDMA (EFA, RoCE offload) traffic does not show in these
//! counters; see [`crate::collect::rdma`].

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use servescope_proto::v1::{FieldError, NetInterfaceReading};

use crate::collect::sysfs::parse::{parse_text, parse_u64, ParseError};
use crate::collect::sysfs::{new_buf, read_carrier, AttrBuf, AttrFile, NETDEV_STAT_NAMES};

/// Default number of reads between directory rescans (5 s at 100 ms).
pub const DEFAULT_RESCAN_EVERY: u32 = 50;
/// At most this many interfaces are tracked.
const MAX_INTERFACES: usize = 4096;

/// Reads every interface under `<sysfs_root>/class/net` once.
pub fn read_interfaces(sysfs_root: &Path) -> (Vec<NetInterfaceReading>, Vec<FieldError>) {
    NetdevReader::new(sysfs_root).read()
}

/// Repeated reads of interface statistics with a cached interface list.
#[derive(Debug)]
pub struct NetdevReader {
    class_net: PathBuf,
    ifaces: Vec<Iface>,
    rescan_every: u32,
    reads_since_scan: u32,
    scanned: bool,
    /// Tests turn this off to see deletions on a regular file system.
    keep_open: bool,
}

#[derive(Debug)]
struct Iface {
    name: String,
    stats: [AttrFile; 8],
    operstate: AttrFile,
    carrier: AttrFile,
}

impl Iface {
    fn new(class_net: &Path, name: String, keep_open: bool) -> Self {
        let dir = class_net.join(&name);
        let file = |p: PathBuf| AttrFile::with_keep_open(p, keep_open);
        Iface {
            stats: NETDEV_STAT_NAMES.map(|s| file(dir.join("statistics").join(s))),
            operstate: file(dir.join("operstate")),
            carrier: file(dir.join("carrier")),
            name,
        }
    }
}

fn set_stat(r: &mut NetInterfaceReading, i: usize, v: u64) {
    let slot = match i {
        0 => &mut r.rx_bytes,
        1 => &mut r.tx_bytes,
        2 => &mut r.rx_packets,
        3 => &mut r.tx_packets,
        4 => &mut r.rx_errors,
        5 => &mut r.tx_errors,
        6 => &mut r.rx_dropped,
        _ => &mut r.tx_dropped,
    };
    *slot = v;
}

impl NetdevReader {
    pub fn new(sysfs_root: &Path) -> Self {
        NetdevReader {
            class_net: sysfs_root.join("class/net"),
            ifaces: Vec::new(),
            rescan_every: DEFAULT_RESCAN_EVERY,
            reads_since_scan: 0,
            scanned: false,
            keep_open: true,
        }
    }

    /// Lists `class/net` again every `n` reads (at least 1).
    pub fn with_rescan_every(mut self, n: u32) -> Self {
        self.rescan_every = n.max(1);
        self
    }

    /// The interfaces currently tracked, sorted.
    pub fn interface_names(&self) -> Vec<String> {
        self.ifaces.iter().map(|i| i.name.clone()).collect()
    }

    /// Reads every tracked interface, sorted by name. A missing or malformed value
    /// is 0 (operstate "", carrier `None`) plus a [`FieldError`] `"<iface>/<file>"`;
    /// an unreadable `carrier` because the interface is down (EINVAL) is `None`
    /// without error.
    pub fn read(&mut self) -> (Vec<NetInterfaceReading>, Vec<FieldError>) {
        let mut errors = Vec::new();
        let mut rescanned = false;
        if !self.scanned || self.reads_since_scan >= self.rescan_every {
            self.rescan(&mut errors);
            rescanned = true;
        }
        self.reads_since_scan += 1;
        let mut buf = new_buf();
        let (readings, read_errors, gone) = self.read_all(&mut buf);
        if gone && !rescanned {
            // An interface vanished (or was renamed): list again and re-read, so
            // a removed interface is dropped rather than reported as errors.
            let mut retry_errors = Vec::new();
            self.rescan(&mut retry_errors);
            let (readings, read_errors, _) = self.read_all(&mut buf);
            retry_errors.extend(read_errors);
            return (readings, retry_errors);
        }
        errors.extend(read_errors);
        (readings, errors)
    }

    fn rescan(&mut self, errors: &mut Vec<FieldError>) {
        self.scanned = true;
        self.reads_since_scan = 0;
        let mut names: Vec<String> = match fs::read_dir(&self.class_net) {
            Ok(rd) => rd
                .take(MAX_INTERFACES)
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect(),
            Err(e) => {
                errors.push(FieldError {
                    field: "class/net".into(),
                    error: format!("cannot list {}: {e}", self.class_net.display()),
                });
                Vec::new()
            }
        };
        names.sort();
        // Keep the open files of interfaces that are still there.
        let mut old: HashMap<String, Iface> =
            self.ifaces.drain(..).map(|i| (i.name.clone(), i)).collect();
        self.ifaces = names
            .into_iter()
            .map(|n| {
                old.remove(&n)
                    .unwrap_or_else(|| Iface::new(&self.class_net, n, self.keep_open))
            })
            .collect();
    }

    /// Readings, errors, and whether some file was gone.
    fn read_all(&mut self, buf: &mut AttrBuf) -> (Vec<NetInterfaceReading>, Vec<FieldError>, bool) {
        let mut errors = Vec::new();
        let mut gone = false;
        let readings = self
            .ifaces
            .iter_mut()
            .map(|iface| {
                let mut r = NetInterfaceReading {
                    name: iface.name.clone(),
                    ..Default::default()
                };
                let mut fail = |file: &str, (is_gone, error): (bool, String)| {
                    gone |= is_gone;
                    errors.push(FieldError {
                        field: format!("{}/{file}", iface.name),
                        error,
                    });
                };
                for (i, file) in iface.stats.iter_mut().enumerate() {
                    match read_parsed(file, buf, parse_u64) {
                        Ok(v) => set_stat(&mut r, i, v),
                        Err(e) => fail(&format!("statistics/{}", NETDEV_STAT_NAMES[i]), e),
                    }
                }
                match read_parsed(&mut iface.operstate, buf, parse_text) {
                    Ok(s) => r.operstate = s,
                    Err(e) => fail("operstate", e),
                }
                match read_carrier(&mut iface.carrier, buf) {
                    Ok(c) => r.carrier = c,
                    Err(e) => fail("carrier", (false, e)),
                }
                r
            })
            .collect();
        (readings, errors, gone)
    }
}

/// Reads and parses one file; the error says whether the file was gone.
fn read_parsed<T>(
    file: &mut AttrFile,
    buf: &mut AttrBuf,
    parse: fn(&[u8]) -> Result<T, ParseError>,
) -> Result<T, (bool, String)> {
    match file.read(buf) {
        Ok(raw) => parse(raw).map_err(|e| (false, e.to_string())),
        Err(e) => Err((e.is_gone(), e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::rdma::fixture::{set_netdev_down, write_p5_tree, P5FixtureOptions};

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_p5_tree(dir.path(), &P5FixtureOptions::default()).unwrap();
        dir
    }

    fn stat(root: &Path, iface: &str, name: &str) -> u64 {
        let p = root
            .join("class/net")
            .join(iface)
            .join("statistics")
            .join(name);
        fs::read_to_string(p).unwrap().trim().parse().unwrap()
    }

    #[test]
    fn reads_every_interface_including_lo() {
        let dir = fixture();
        let (readings, errors) = read_interfaces(dir.path());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(readings.len(), 33);
        assert!(readings.iter().map(|r| &r.name).is_sorted());
        let lo = readings.iter().find(|r| r.name == "lo").unwrap();
        assert_eq!(lo.operstate, "unknown");
        assert_eq!(lo.carrier, Some(true));
        let r = readings.iter().find(|r| r.name == "enp19s0").unwrap();
        assert_eq!(r.operstate, "up");
        assert_eq!(r.carrier, Some(true));
        let got = [
            r.rx_bytes,
            r.tx_bytes,
            r.rx_packets,
            r.tx_packets,
            r.rx_errors,
            r.tx_errors,
            r.rx_dropped,
            r.tx_dropped,
        ];
        for (v, name) in got.iter().zip(NETDEV_STAT_NAMES) {
            assert_eq!(*v, stat(dir.path(), "enp19s0", name), "{name}");
        }
    }

    #[test]
    fn down_interface_and_bad_values() {
        let dir = fixture();
        let mut reader = NetdevReader::new(dir.path());
        set_netdev_down(dir.path(), "enp20s0").unwrap();
        let stats = dir.path().join("class/net/enp21s0/statistics");
        fs::write(stats.join("rx_bytes"), "abc\n").unwrap();
        fs::write(stats.join("tx_bytes"), vec![b'1'; 1 << 20]).unwrap();
        let (readings, errors) = reader.read();
        let r = readings.iter().find(|r| r.name == "enp20s0").unwrap();
        assert_eq!(r.operstate, "down");
        assert_eq!(r.carrier, None);
        let r = readings.iter().find(|r| r.name == "enp21s0").unwrap();
        assert_eq!((r.rx_bytes, r.tx_bytes), (0, 0));
        assert_eq!(r.rx_packets, stat(dir.path(), "enp21s0", "rx_packets"));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        // Fixture limitation: no EINVAL from a regular file, so the removed
        // carrier is reported; a real down interface's EINVAL is not.
        assert_eq!(
            fields,
            [
                "enp20s0/carrier",
                "enp21s0/statistics/rx_bytes",
                "enp21s0/statistics/tx_bytes"
            ]
        );
    }

    #[test]
    fn rescans_on_schedule_and_when_an_interface_vanishes() {
        let dir = fixture();
        let root = dir.path();
        let mut reader = NetdevReader::new(root).with_rescan_every(3);
        // Regular files stay readable through open descriptors after deletion
        // (sysfs answers ENODEV); reopen on every read to see the removal.
        reader.keep_open = false;
        assert_eq!(reader.read().0.len(), 33);
        // A new interface appears only at the next scheduled rescan.
        fs::create_dir_all(root.join("class/net/dummy0/statistics")).unwrap();
        for s in NETDEV_STAT_NAMES {
            fs::write(root.join("class/net/dummy0/statistics").join(s), "5\n").unwrap();
        }
        fs::write(root.join("class/net/dummy0/operstate"), "unknown\n").unwrap();
        fs::write(root.join("class/net/dummy0/carrier"), "1\n").unwrap();
        assert_eq!(reader.read().0.len(), 33);
        assert_eq!(reader.read().0.len(), 33);
        let (readings, errors) = reader.read();
        assert_eq!(readings.len(), 34, "{errors:?}");
        assert!(reader.interface_names().contains(&"dummy0".to_string()));
        // A vanished interface triggers an immediate rescan: dropped, no errors.
        fs::remove_dir_all(root.join("class/net/dummy0")).unwrap();
        let (readings, errors) = reader.read();
        assert_eq!(readings.len(), 33);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn missing_class_net_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (readings, errors) = read_interfaces(dir.path());
        assert!(readings.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "class/net");
    }

    #[test]
    fn real_sysfs_does_not_panic() {
        let mut reader = NetdevReader::new(Path::new("/sys"));
        for _ in 0..3 {
            let (readings, errors) = reader.read();
            eprintln!(
                "real /sys: {} interfaces, errors {errors:?}",
                readings.len()
            );
        }
    }
}
