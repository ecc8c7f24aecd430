//! sysfs attributes, shared by the RDMA and host network collectors: bounded reads
//! with descriptors kept open ([`AttrFile`], [`set_keep_open_limit`]), strict
//! parsers of attribute contents and PCI names ([`parse`]), and the netdev
//! statistics files.

pub mod parse;
mod read;

pub(crate) use read::{new_buf, read_attr, AttrBuf, AttrFile};
pub use read::{set_keep_open_limit, ReadError, MAX_ATTR_BYTES};

/// The `class/net/<interface>/statistics/` files read, in
/// `NetInterfaceReading` field order.
pub const NETDEV_STAT_NAMES: [&str; 8] = [
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
];

/// A netdev `carrier`: EINVAL (the interface is down) is `None`, not an error.
pub(crate) fn read_carrier(file: &mut AttrFile, buf: &mut AttrBuf) -> Result<Option<bool>, String> {
    match file.read(buf) {
        Ok(raw) => parse::parse_carrier(raw)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(e) if e.is_einval() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn einval_carrier_is_none_without_error() {
        // /proc/self/clear_refs has no read method: reading it fails with EINVAL
        // (when it can be opened at all).
        let path = Path::new("/proc/self/clear_refs");
        let mut buf = new_buf();
        if std::fs::File::open(path).is_ok() {
            let mut f = AttrFile::new(path.to_path_buf());
            assert_eq!(read_carrier(&mut f, &mut buf), Ok(None));
        }
    }
}
