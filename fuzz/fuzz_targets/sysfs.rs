//! Fuzz target: the agent's sysfs attribute parsers (`agent/src/collect/sysfs/parse.rs`:
//! counters, NUMA node, text, port state, carrier, PCI addresses and paths) and its
//! kernel-log `NVRM: Xid` parser (`agent/src/collect/kmsg/parse.rs`), on arbitrary bytes.
//!
//! Oracles besides "no panic": a parsed counter prints back as the trimmed input
//! without leading zeros; a parsed PCI address prints in sysfs form and parses back
//! to itself (normalising is idempotent); text values are bounded printable ASCII; a
//! PCI path keeps only root buses and addresses; an Xid's PCI id is part of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../agent/src/collect/kmsg/parse.rs"]
#[allow(dead_code)]
mod kmsg;
#[path = "../../agent/src/collect/sysfs/parse.rs"]
#[allow(dead_code)]
mod parse;

use parse::*;

fuzz_target!(|raw: &[u8]| {
    if let Ok(v) = parse_u64(raw) {
        let t = trim_attr(raw);
        let digits = std::str::from_utf8(t).unwrap_or_default();
        let stripped = digits.trim_start_matches('0');
        let want = if stripped.is_empty() { "0" } else { stripped };
        assert_eq!(v.to_string(), want);
    }
    let _ = parse_numa_node(raw);
    for text in [parse_text(raw), parse_port_state(raw)]
        .into_iter()
        .flatten()
    {
        assert!(text.len() <= raw.len());
    }
    if let Ok(c) = parse_carrier(raw) {
        assert_eq!(trim_attr(raw), if c { b"1" } else { b"0" });
    }
    let s = String::from_utf8_lossy(raw);
    if let Ok(a) = parse_pci_address(&s) {
        let shown = a.to_string();
        assert_eq!(parse_pci_address(&shown), Ok(a));
        let n = normalize_pci_bus_id(&s).expect("a parsed address normalises");
        assert_eq!(normalize_pci_bus_id(&n).as_deref(), Ok(n.as_str()));
    }
    for c in pci_path_from_path(std::path::Path::new(s.as_ref())) {
        assert!(is_pci_root_bus(&c) || parse_pci_address(&c).is_ok(), "{c}");
    }
    if let Some(x) = kmsg::parse_xid(&s) {
        assert!(s.contains(x.pci.as_str()), "{x:?}");
    }
});
