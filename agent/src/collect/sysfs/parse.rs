//! Pure parsers for sysfs attribute contents and PCI names.
//!
//! Everything here works on bytes or strings already read (see [`super::read`]
//! for the I/O), so each parser is unit-tested on canned input. sysfs content is
//! untrusted: parsers are strict, never panic, and report what they saw.

use std::path::Path;

/// Longest text attribute we accept (rate, link_layer, operstate, state names).
const MAX_TEXT_LEN: usize = 256;
/// How much of a bad value an error message quotes.
const SNIPPET_LEN: usize = 32;

/// Why an attribute's content was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty value")]
    Empty,
    #[error("not a decimal unsigned integer: {0}")]
    NotDecimal(String),
    #[error("value out of range: {0}")]
    OutOfRange(String),
    #[error("not printable text: {0}")]
    NotText(String),
    #[error("expected {expected}, got {got}")]
    Format { expected: &'static str, got: String },
}

/// A quoted, escaped, truncated rendering of bad input for error messages.
fn snippet(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(SNIPPET_LEN)];
    let text = String::from_utf8_lossy(cut);
    if raw.len() > SNIPPET_LEN {
        format!("{text:?}… ({} bytes)", raw.len())
    } else {
        format!("{text:?}")
    }
}

fn format_err(expected: &'static str, raw: &[u8]) -> ParseError {
    ParseError::Format {
        expected,
        got: snippet(raw),
    }
}

/// Strips ASCII whitespace (the kernel's trailing newline) from both ends.
pub fn trim_attr(raw: &[u8]) -> &[u8] {
    raw.trim_ascii()
}

/// A decimal `u64` counter, e.g. `"123456\n"`. No sign, no hex, no spaces inside.
pub fn parse_u64(raw: &[u8]) -> Result<u64, ParseError> {
    let t = trim_attr(raw);
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    if !t.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::NotDecimal(snippet(t)));
    }
    t.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| ParseError::OutOfRange(snippet(t)))
    })
}

/// `numa_node`: `-1` (no NUMA information) is `None`, otherwise a node number.
pub fn parse_numa_node(raw: &[u8]) -> Result<Option<i32>, ParseError> {
    let t = trim_attr(raw);
    if t == b"-1" {
        return Ok(None);
    }
    let v = parse_u64(t)?;
    i32::try_from(v)
        .map(Some)
        .map_err(|_| ParseError::OutOfRange(snippet(t)))
}

/// A short line of printable ASCII, e.g. `"100 Gb/sec (4X EDR)"`, `"up"`.
pub fn parse_text(raw: &[u8]) -> Result<String, ParseError> {
    let t = trim_attr(raw);
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    if t.len() > MAX_TEXT_LEN || !t.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(ParseError::NotText(snippet(t)));
    }
    // All bytes are ASCII, so this cannot fail; map rather than unwrap anyway.
    std::str::from_utf8(t)
        .map(str::to_owned)
        .map_err(|_| ParseError::NotText(snippet(t)))
}

/// An IB port `state` / `phys_state` line: `"4: ACTIVE"` → `"ACTIVE"`,
/// `"5: LinkUp"` → `"LinkUp"`.
pub fn parse_port_state(raw: &[u8]) -> Result<String, ParseError> {
    const EXPECTED: &str = "\"<number>: <NAME>\"";
    let t = trim_attr(raw);
    let Some(colon) = t.iter().position(|&b| b == b':') else {
        return Err(format_err(EXPECTED, t));
    };
    let (num, rest) = (&t[..colon], &t[colon + 1..]);
    if num.is_empty() || !num.iter().all(u8::is_ascii_digit) {
        return Err(format_err(EXPECTED, t));
    }
    parse_text(rest).map_err(|_| format_err(EXPECTED, t))
}

/// A netdev `carrier`: `"1"` or `"0"`.
pub fn parse_carrier(raw: &[u8]) -> Result<bool, ParseError> {
    match trim_attr(raw) {
        b"1" => Ok(true),
        b"0" => Ok(false),
        t => Err(format_err("\"0\" or \"1\"", t)),
    }
}

/// A PCI function address: domain, bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciAddress {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl std::fmt::Display for PciAddress {
    /// The sysfs spelling: at least 4 lower-case hex digits of domain.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// Parses `min..=max` hex digits into a u32.
fn hex_field(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// `DDDD:BB:DD.F` with a domain of 4 to 8 hex digits (NVML prints 8, sysfs 4,
/// or 5 behind an Intel VMD), either case.
pub fn parse_pci_address(s: &str) -> Result<PciAddress, ParseError> {
    const EXPECTED: &str = "a PCI address \"DDDD:BB:DD.F\"";
    let bad = || format_err(EXPECTED, s.as_bytes());
    let (left, func) = s.rsplit_once('.').ok_or_else(bad)?;
    let mut parts = left.split(':');
    let (Some(dom), Some(bus), Some(dev), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let domain = hex_field(dom, 4, 8).ok_or_else(bad)?;
    let bus = hex_field(bus, 2, 2).ok_or_else(bad)?;
    let device = hex_field(dev, 2, 2).filter(|d| *d < 0x20).ok_or_else(bad)?;
    let function = hex_field(func, 1, 1).filter(|f| *f < 8).ok_or_else(bad)?;
    Ok(PciAddress {
        domain,
        // bus is 2 hex digits and device < 0x20, function < 8: all fit in u8.
        bus: u8::try_from(bus).map_err(|_| bad())?,
        device: u8::try_from(device).map_err(|_| bad())?,
        function: u8::try_from(function).map_err(|_| bad())?,
    })
}

/// An NVML bus id (`"00000000:53:00.0"`, any case) in sysfs form (`"0000:53:00.0"`).
pub fn normalize_pci_bus_id(s: &str) -> Result<String, ParseError> {
    parse_pci_address(s.trim()).map(|a| a.to_string())
}

/// A PCI root bus directory name, `pci<domain>:<bus>` (e.g. `"pci0000:44"`).
pub fn is_pci_root_bus(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("pci") else {
        return false;
    };
    match rest.split_once(':') {
        Some((dom, bus)) => hex_field(dom, 4, 8).is_some() && hex_field(bus, 2, 2).is_some(),
        None => false,
    }
}

/// The PCI components of a resolved sysfs device path, root bus first:
/// `/sys/devices/pci0000:44/0000:44:01.0/0000:45:00.0/0000:4f:00.0` →
/// `["pci0000:44", "0000:44:01.0", "0000:45:00.0", "0000:4f:00.0"]`.
///
/// Starts at the first root-bus component and stops at the first component that
/// is neither a root bus nor a PCI address (e.g. `infiniband`, `net`). Empty for
/// devices not on PCI (soft-RoCE, virtual devices).
pub fn pci_path_from_path(path: &Path) -> Vec<String> {
    let comps = path.components().filter_map(|c| c.as_os_str().to_str());
    comps
        .skip_while(|c| !is_pci_root_bus(c))
        .take_while(|c| is_pci_root_bus(c) || parse_pci_address(c).is_ok())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::test_support::Rng;
    use std::path::PathBuf;

    #[test]
    fn u64_counters() {
        assert_eq!(parse_u64(b"0\n"), Ok(0));
        assert_eq!(parse_u64(b"  123456789\n"), Ok(123_456_789));
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(
            parse_u64(b"18446744073709551616"),
            Err(ParseError::OutOfRange(_))
        ));
        assert_eq!(parse_u64(b"\n"), Err(ParseError::Empty));
        assert!(matches!(parse_u64(b"abc"), Err(ParseError::NotDecimal(_))));
        assert!(matches!(parse_u64(b"-1"), Err(ParseError::NotDecimal(_))));
        assert!(matches!(parse_u64(b"+1"), Err(ParseError::NotDecimal(_))));
        assert!(matches!(parse_u64(b"1 2"), Err(ParseError::NotDecimal(_))));
        assert!(matches!(parse_u64(b"0x10"), Err(ParseError::NotDecimal(_))));
    }

    #[test]
    fn error_messages_quote_and_truncate() {
        let long = vec![b'x'; 5000];
        let msg = parse_u64(&long).map_err(|e| e.to_string()).unwrap_err();
        assert!(msg.contains("5000 bytes"), "{msg}");
        assert!(msg.len() < 120, "{msg}");
        let msg = parse_u64(b"abc").map_err(|e| e.to_string()).unwrap_err();
        assert_eq!(msg, "not a decimal unsigned integer: \"abc\"");
    }

    #[test]
    fn numa_nodes() {
        assert_eq!(parse_numa_node(b"-1\n"), Ok(None));
        assert_eq!(parse_numa_node(b"1\n"), Ok(Some(1)));
        assert!(parse_numa_node(b"-2").is_err());
        assert!(parse_numa_node(b"4294967296").is_err());
        assert!(parse_numa_node(b"").is_err());
    }

    #[test]
    fn port_states() {
        assert_eq!(parse_port_state(b"4: ACTIVE\n").as_deref(), Ok("ACTIVE"));
        assert_eq!(parse_port_state(b"5: LinkUp\n").as_deref(), Ok("LinkUp"));
        assert_eq!(parse_port_state(b"1: DOWN").as_deref(), Ok("DOWN"));
        assert!(parse_port_state(b"ACTIVE").is_err());
        assert!(parse_port_state(b": ACTIVE").is_err());
        assert!(parse_port_state(b"4:").is_err());
        assert!(parse_port_state(b"x4: ACTIVE").is_err());
    }

    #[test]
    fn text_and_carrier() {
        assert_eq!(
            parse_text(b"100 Gb/sec (4X EDR)\n").as_deref(),
            Ok("100 Gb/sec (4X EDR)")
        );
        assert!(parse_text(b"a\x00b").is_err());
        assert!(parse_text(b"\xff\xfe").is_err());
        assert!(parse_text(&[b'a'; 300]).is_err());
        assert_eq!(parse_carrier(b"1\n"), Ok(true));
        assert_eq!(parse_carrier(b"0\n"), Ok(false));
        assert!(parse_carrier(b"2").is_err());
        assert!(parse_carrier(b"").is_err());
    }

    #[test]
    fn pci_addresses_and_nvml_bus_ids() {
        assert_eq!(
            normalize_pci_bus_id("00000000:53:00.0").as_deref(),
            Ok("0000:53:00.0")
        );
        assert_eq!(
            normalize_pci_bus_id("00000000:9A:1F.7").as_deref(),
            Ok("0000:9a:1f.7")
        );
        assert_eq!(
            normalize_pci_bus_id("0000:4f:00.0").as_deref(),
            Ok("0000:4f:00.0")
        );
        assert_eq!(
            normalize_pci_bus_id("00010000:01:00.0").as_deref(),
            Ok("10000:01:00.0")
        );
        for bad in [
            "53:00.0",
            "0000:53:00",
            "0000:53:20.0",
            "0000:53:00.8",
            "000:53:00.0",
            "000000000:53:00.0",
            "0000:5g:00.0",
            "0000:53:00:00.0",
            "",
        ] {
            assert!(normalize_pci_bus_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pci_paths() {
        let p = PathBuf::from(
            "/tmp/x/devices/pci0000:44/0000:44:01.0/0000:45:00.0/0000:46:01.0/0000:4f:00.0",
        );
        assert_eq!(
            pci_path_from_path(&p),
            [
                "pci0000:44",
                "0000:44:01.0",
                "0000:45:00.0",
                "0000:46:01.0",
                "0000:4f:00.0"
            ]
        );
        let ib = p.join("infiniband/rdmap79s0");
        assert_eq!(pci_path_from_path(&ib).len(), 5);
        assert!(pci_path_from_path(Path::new("/sys/devices/virtual/net/lo")).is_empty());
        assert!(is_pci_root_bus("pci0000:00"));
        assert!(is_pci_root_bus("pci10000:e0"));
        assert!(!is_pci_root_bus("pci_express"));
    }

    #[test]
    fn parsers_never_panic_on_random_bytes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Bias towards the characters the parsers care about.
        const ALPHABET: &[u8] = b"0123456789abcdefABCDEF:.- \n\tpci\x00\xff";
        for _ in 0..20_000 {
            let len = (rng.next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r.is_multiple_of(3) {
                        r as u8
                    } else {
                        ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                    }
                })
                .collect();
            let _ = parse_u64(&bytes);
            let _ = parse_numa_node(&bytes);
            let _ = parse_text(&bytes);
            let _ = parse_port_state(&bytes);
            let _ = parse_carrier(&bytes);
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_pci_address(&s);
            let _ = normalize_pci_bus_id(&s);
            let _ = is_pci_root_bus(&s);
            let _ = pci_path_from_path(Path::new(&*s));
        }
    }
}
