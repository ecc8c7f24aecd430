//! `NVRM: Xid` kernel log lines: parsing (pure, bounded) and mapping their PCI id to
//! a GPU.

/// A parsed `NVRM: Xid` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidLine {
    /// As printed: "0000:cb:00" (domain:bus:device).
    pub pci: String,
    pub xid: u64,
    pub rest: String,
}

/// Longest record we look at (kmsg records are at most ~1 KiB).
pub const MAX_RECORD: usize = 8192;

/// Parses one /dev/kmsg record ("pri,seq,usec,flags;message") or a plain dmesg
/// line, returning the Xid if it is an `NVRM: Xid` line.
pub fn parse_xid(record: &str) -> Option<XidLine> {
    let record = if record.len() > MAX_RECORD {
        let mut end = MAX_RECORD;
        while !record.is_char_boundary(end) {
            end -= 1;
        }
        &record[..end]
    } else {
        record
    };
    let msg = record.split_once(';').map(|(_, m)| m).unwrap_or(record);
    let at = msg.find("NVRM: Xid (")?;
    let rest = &msg[at + "NVRM: Xid (".len()..];
    let (inside, after) = rest.split_once(')')?;
    let pci = inside
        .strip_prefix("PCI:")
        .unwrap_or(inside)
        .trim()
        .to_string();
    let after = after.strip_prefix(':')?.trim_start();
    let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || digits.len() > 6 {
        return None;
    }
    let xid = digits.parse().ok()?;
    let rest = after[digits.len()..]
        .trim_start_matches([',', ' '])
        .trim_end()
        .to_string();
    Some(XidLine { pci, xid, rest })
}

/// Maps an Xid's PCI id ("0000:cb:00") to a GPU index, given NVML bus ids.
pub fn gpu_for_pci(pci: &str, gpus: &[(u32, String)]) -> Option<u32> {
    let want = pci.to_ascii_lowercase();
    let want = want.trim_start_matches('0');
    gpus.iter()
        .find(|(_, bus)| {
            let b = bus.to_ascii_lowercase();
            let b = b.rsplit_once('.').map(|(a, _)| a).unwrap_or(&b).to_string();
            b.trim_start_matches('0').ends_with(want) && !want.is_empty()
        })
        .map(|(i, _)| *i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kmsg_record() {
        let r = "3,1234,5678901,-;NVRM: Xid (PCI:0000:cb:00): 79, pid=1234, name=python3, GPU has fallen off the bus.";
        let x = parse_xid(r).unwrap();
        assert_eq!(x.pci, "0000:cb:00");
        assert_eq!(x.xid, 79);
        assert!(x.rest.starts_with("pid=1234"));
    }

    #[test]
    fn parses_dmesg_line_and_rejects_others() {
        let x = parse_xid("[ 123.456] NVRM: Xid (PCI:0000:53:00): 13, Graphics Exception").unwrap();
        assert_eq!(x.xid, 13);
        assert!(parse_xid("6,1,2,-;eth0: link up").is_none());
        assert!(parse_xid("NVRM: Xid (PCI:0000:53:00): , x").is_none());
        assert!(parse_xid("NVRM: Xid (PCI:0000:53:00").is_none());
        assert!(parse_xid("NVRM: Xid (PCI:0000:53:00): 99999999999999999999").is_none());
    }

    #[test]
    fn maps_pci_to_gpu() {
        let gpus = vec![
            (0, "00000000:53:00.0".to_string()),
            (1, "00000000:CB:00.0".into()),
        ];
        assert_eq!(gpu_for_pci("0000:cb:00", &gpus), Some(1));
        assert_eq!(gpu_for_pci("0000:53:00", &gpus), Some(0));
        assert_eq!(gpu_for_pci("0000:99:00", &gpus), None);
    }

    #[test]
    fn random_input_never_panics() {
        let mut s: u64 = 0x9e3779b97f4a7c15;
        let alphabet = b"NVRM: Xid (PCI:0123456789abcdef),;- \n\xff";
        for _ in 0..20_000 {
            let len = (s % 64) as usize;
            let mut v = Vec::with_capacity(len + 16);
            v.extend_from_slice(b"NVRM: Xid (");
            for _ in 0..len {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                v.push(alphabet[(s % alphabet.len() as u64) as usize]);
            }
            let _ = parse_xid(&String::from_utf8_lossy(&v));
        }
        let _ = parse_xid(&"é".repeat(10_000));
    }
}
