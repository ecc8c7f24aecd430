//! Transport truth for a connected UCX endpoint: which transport/device each lane
//! uses, and whether RMA runs on native RMA lanes or is emulated over active messages.
//!
//! UCX ≥ 1.14: `ucp_ep_query` with `UCP_EP_ATTR_FIELD_TRANSPORTS` (layout below,
//! from the 1.14 API docs, since our pinned 1.13 headers lack it). Any version: the
//! text of `ucp_ep_print_info`, parsed here. Its lane lines look like
//! `#   lane[0]:  1:tcp/lo.0 md[0]   -> md[0]/tcp/sysdev[255] rma_bw#0 am am_bw#0`
//! and, when the endpoint has native RMA lanes, `#   put[0]: 0..<short>..(inf)`.

use std::ffi::{c_char, c_uint, c_void, CStr};

use super::loader::Ucp;
use super::sys::ucp_ep_h;
use crate::plan::TransportTruth;

/// `UCP_EP_ATTR_FIELD_TRANSPORTS` (UCX ≥ 1.14).
const UCP_EP_ATTR_FIELD_TRANSPORTS: u64 = 1 << 3;
const MAX_ENTRIES: usize = 32;

/// `ucp_transport_entry_t` (UCX ≥ 1.14).
#[repr(C)]
#[derive(Clone, Copy)]
struct TransportEntry {
    transport_name: *const c_char,
    device_name: *const c_char,
}

/// `ucp_transports_t` (UCX ≥ 1.14).
#[repr(C)]
struct Transports {
    entries: *mut TransportEntry,
    num_entries: c_uint,
    entry_size: usize,
}

/// `ucp_ep_attr_t` as of UCX 1.14: the 1.13 fields (296 bytes), then `transports`;
/// `_tail` leaves room for fields later versions add (UCX writes only masked fields).
#[repr(C)]
struct EpAttr {
    field_mask: u64,
    name: [c_char; 32],
    local_sockaddr: libc::sockaddr_storage,
    remote_sockaddr: libc::sockaddr_storage,
    transports: Transports,
    _tail: [u8; 256],
}

/// Lanes as "tl/device", through `ucp_ep_query`. None when the library is older
/// than 1.14 or the query fails.
pub fn query_lanes(ucp: &Ucp, ep: ucp_ep_h) -> Option<Vec<String>> {
    if !ucp.has_ep_transports() {
        return None;
    }
    let query = ucp.ep_query?;
    let mut entries = [TransportEntry {
        transport_name: std::ptr::null(),
        device_name: std::ptr::null(),
    }; MAX_ENTRIES];
    // SAFETY: EpAttr is plain data (integers, arrays, pointers); all-zero is valid.
    let mut attr: EpAttr = unsafe { std::mem::zeroed() };
    attr.field_mask = UCP_EP_ATTR_FIELD_TRANSPORTS;
    attr.transports = Transports {
        entries: entries.as_mut_ptr(),
        num_entries: MAX_ENTRIES as c_uint,
        entry_size: std::mem::size_of::<TransportEntry>(),
    };
    // SAFETY: ep is a live endpoint; attr has the ≥1.14 layout and points at
    // MAX_ENTRIES entries of the declared size, which UCX fills (≤ num_entries).
    let st = unsafe { query(ep, (&mut attr as *mut EpAttr).cast::<c_void>()) };
    if st != super::sys::UCS_OK {
        return None;
    }
    let n = (attr.transports.num_entries as usize).min(MAX_ENTRIES);
    let mut out = Vec::new();
    for e in &entries[..n] {
        let tl = cstr(e.transport_name);
        let dev = cstr(e.device_name);
        push_unique(&mut out, format!("{tl}/{dev}"));
    }
    Some(out)
}

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return "?".into();
    }
    // SAFETY: UCX returns NUL-terminated names valid while the endpoint lives.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Sets `truth.lanes` (ucp_ep_query, else ucp_ep_print_info), `truth.rma`, and a
/// note with the print_info evidence, for a live endpoint.
pub fn fill_truth(ucp: &Ucp, ep: ucp_ep_h, truth: &mut TransportTruth) {
    let set_note = |truth: &mut TransportTruth, prefix: &str, note: String| {
        truth.notes.retain(|n| !n.starts_with(prefix));
        truth.notes.push(note);
    };
    let text = print_info(ucp, ep);
    let info = text.as_deref().map(parse_print_info);
    if let Some(t) = &text {
        let note = format!("ucp_ep_print_info: {}", compact(t));
        set_note(truth, "ucp_ep_print_info:", note);
    }
    if let Some(q) = query_lanes(ucp, ep) {
        truth.lanes = q;
        set_note(truth, "lanes from", "lanes from ucp_ep_query".into());
    } else if let Some(p) = &info {
        truth.lanes = p.lanes.clone();
        set_note(truth, "lanes from", "lanes from ucp_ep_print_info".into());
    }
    if let Some(p) = &info {
        truth.rma = p.rma_text();
    }
}

/// The text `ucp_ep_print_info` writes, captured through `open_memstream`.
pub fn print_info(ucp: &Ucp, ep: ucp_ep_h) -> Option<String> {
    let mut buf: *mut c_char = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: open_memstream stores a malloc'd buffer pointer and size in our locals.
    let f = unsafe { libc::open_memstream(&mut buf, &mut len) };
    if f.is_null() {
        return None;
    }
    // SAFETY: ep is live; f is a valid FILE* we own until fclose.
    unsafe { (ucp.ep_print_info)(ep, f) };
    // SAFETY: closing flushes and finalises buf/len; f is not used afterwards.
    unsafe { libc::fclose(f) };
    if buf.is_null() {
        return None;
    }
    // SAFETY: buf holds len bytes written by the stream (plus a NUL).
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let text = String::from_utf8_lossy(bytes).into_owned();
    // SAFETY: buf was allocated by open_memstream with malloc.
    unsafe { libc::free(buf.cast::<c_void>()) };
    Some(text)
}

/// What `ucp_ep_print_info` says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrintInfo {
    /// "tl/device" per lane, deduplicated, in lane order.
    pub lanes: Vec<String>,
    /// Number of `put[i]` lines: native RMA lanes.
    pub rma_lanes: usize,
    /// UCX ≥ 1.16 (new protocol layer) prints protocol tables (`| 0..92 | eager
    /// short | posix/memory |`) for tag sends instead of `put[i]`/`get[i]` lines.
    pub proto_tables: bool,
}

impl PrintInfo {
    /// Free text for `TransportTruth::rma`.
    pub fn rma_text(&self) -> String {
        if self.rma_lanes == 0 && self.proto_tables {
            "not listed: the new UCX protocol layer (UCX >= 1.16) prints only tag-send \
             protocol tables in ucp_ep_print_info, not put/get lanes (UCX_PROTO_INFO=y logs \
             the put/get protocols chosen)"
                .into()
        } else if self.rma_lanes > 0 {
            format!(
                "native: {} RMA lane(s) in ucp_ep_print_info (put[i]/get[i] lines)",
                self.rma_lanes
            )
        } else {
            "emulated: ucp_ep_print_info lists no RMA lane (no put[i]/get[i] lines), so \
             UCX runs put/get as active messages on the am lanes"
                .into()
        }
    }
}

/// The informative lines of `ucp_ep_print_info` (lanes, protocol ranges, RMA),
/// whitespace squeezed, joined with "; " — the evidence behind lanes and `rma`.
pub fn compact(text: &str) -> String {
    text.lines()
        .map(|l| {
            l.trim_start_matches('#')
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty() && !l.starts_with("UCP endpoint") && !l.starts_with("peer:"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses `ucp_ep_print_info` text. Never panics on odd input.
pub fn parse_print_info(text: &str) -> PrintInfo {
    let mut out = PrintInfo::default();
    for line in text.lines() {
        let l = line.trim_start_matches('#').trim();
        if let Some(rest) = l.strip_prefix("lane[") {
            let Some((_, after)) = rest.split_once("]:") else {
                continue;
            };
            if let Some(tok) = after.split_whitespace().next() {
                push_unique(&mut out.lanes, lane_name(tok));
            }
        } else if l.starts_with("put[") && l.contains("]:") {
            out.rma_lanes += 1;
        } else if l.starts_with('|') && l.contains("..") {
            out.proto_tables = true;
        }
    }
    out
}

/// "1:tcp/lo.0" → "tcp/lo"; "0:rc_mlx5/mlx5_0:1.0" → "rc_mlx5/mlx5_0:1".
fn lane_name(tok: &str) -> String {
    let t = match tok.split_once(':') {
        Some((idx, rest)) if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => tok,
    };
    match t.rsplit_once('.') {
        Some((name, idx)) if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) => {
            name.to_string()
        }
        _ => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "#\n# UCP endpoint \n#\n#               peer: <no debug data>
#                 lane[0]:  1:tcp/lo.0 md[0]                -> md[0]/tcp/sysdev[255] rma_bw#0 am am_bw#0
#                 lane[1]:  0:tcp/eth0.0 md[0]              -> md[0]/tcp/sysdev[255] rma_bw#1 wireup
#
#                tag_send: 0..<egr/short>..8185..<egr/zcopy>..8192..<rndv>..(inf)
#                  rma_bw: mds [0] rndv_rkey_size 10\n";

    const SHM: &str = "#                 lane[0]:  0:sysv/memory.0 md[0]           -> md[0]/sysv/sysdev[255] am am_bw#0
#                 lane[1]:  1:posix/memory.0 md[1]          -> md[1]/posix/sysdev[255]
#                 lane[2]:  2:cma/memory.0 md[2]            -> md[2]/cma/sysdev[255] rma_bw#0
#                  put[0]: 0..<short>..4294967296..<bcopy>..(inf)
#                  get[0]: 0..<bcopy>..(inf)
#                  put[1]: 0..<short>..4294967296..<bcopy>..(inf)\n";

    #[test]
    fn tcp_lanes_and_emulated_rma() {
        let p = parse_print_info(TCP);
        assert_eq!(p.lanes, vec!["tcp/lo", "tcp/eth0"]);
        assert_eq!(p.rma_lanes, 0);
        assert!(p.rma_text().starts_with("emulated"));
    }

    #[test]
    fn shm_lanes_and_native_rma() {
        let p = parse_print_info(SHM);
        assert_eq!(p.lanes, vec!["sysv/memory", "posix/memory", "cma/memory"]);
        assert_eq!(p.rma_lanes, 2);
        assert!(p.rma_text().starts_with("native"));
    }

    #[test]
    fn ucx_116_protocol_tables_do_not_claim_emulation() {
        let t = "#   lane[0]:  0:posix/memory.0 md[0] -> md[0]/posix/sysdev[255] seg 4294967295 am am_bw#0
+---------------------------------+----------------------------------------------------------------------+
| 0x7f6c400090c0 intra-node cfg#0 | tagged message by ucp_tag_send*(fast-completion) from host memory |
+---------------------------------+-------------------------------------------------------+--------------+
|                            0..92 | eager short                                           | posix/memory |
|                        93..8248 | eager copy-in copy-out                                | posix/memory |\n";
        let p = parse_print_info(t);
        assert_eq!(p.lanes, vec!["posix/memory"]);
        assert!(p.proto_tables);
        assert!(p.rma_text().starts_with("not listed"), "{}", p.rma_text());
    }

    #[test]
    fn ib_and_efa_device_names_keep_port() {
        assert_eq!(lane_name("0:rc_mlx5/mlx5_0:1.0"), "rc_mlx5/mlx5_0:1");
        assert_eq!(lane_name("3:srd/rdmap16s27:1.0"), "srd/rdmap16s27:1");
        assert_eq!(lane_name("self/memory0"), "self/memory0");
    }

    #[test]
    fn compact_keeps_the_evidence() {
        let c = compact(TCP);
        assert!(
            c.starts_with("lane[0]: 1:tcp/lo.0 md[0] -> md[0]/tcp/sysdev[255]"),
            "{c}"
        );
        assert!(c.contains("; tag_send: 0..<egr/short>"), "{c}");
        assert!(!c.contains("peer:"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for t in [
            "",
            "lane[",
            "lane[0]:",
            "# lane[x]: :",
            "put[",
            "\u{0}lane[0]:  :.\n",
        ] {
            let _ = parse_print_info(t);
        }
    }

    /// Property: random lines built from print_info's own vocabulary (and junk bytes)
    /// never panic, and every lane found names a transport from the input.
    #[test]
    fn property_random_print_info_never_panics() {
        let words = [
            "lane[0]:",
            "lane[12]:",
            "#",
            "tcp/lo",
            "posix/memory",
            "rc_mlx5/mlx5_0:1",
            "srd/rdmap16s27:1",
            "put[0]",
            "get[1]",
            "am",
            "rma",
            "bw",
            "md[0]",
            ":",
            ".",
            "\u{ff}",
            "",
            "  ",
            "->",
            "lane[",
            "[",
            "]",
            "rndv",
            "tag",
            "eager",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..5000 {
            let mut t = String::new();
            let lines = (x % 8) as usize;
            for _ in 0..lines {
                for _ in 0..(x % 7) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    t.push_str(words[(x % words.len() as u64) as usize]);
                    t.push(if x & 1 == 0 { ' ' } else { '\t' });
                }
                t.push('\n');
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            }
            let info = parse_print_info(&t);
            for l in &info.lanes {
                let tl = l.split('/').next().unwrap_or("");
                assert!(t.contains(tl), "lane {l} not from input {t:?}");
            }
        }
    }

    #[test]
    fn ep_attr_prefix_matches_113_size() {
        // sizeof(ucp_ep_attr_t) in the 1.13 headers is 296; transports follow it.
        assert_eq!(std::mem::offset_of!(EpAttr, transports), 296);
    }
}
