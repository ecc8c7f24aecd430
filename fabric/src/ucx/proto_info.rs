//! UCX's protocol selection, parsed from its log (`UCX_PROTO_INFO=y`, and the
//! endpoint configuration lines of `UCX_LOG_LEVEL=info`). Pure and bounded: the
//! text comes from a log file the probe captured or from a capture of any process.
//!
//! UCX ≥ 1.15 prints one table per (endpoint config, operation, memory types):
//! ```text
//! +--------+--------------------+------------------------------------+
//! | servescope-6626 intra-node cfg#1                                 |
//! | remote memory read by ucp_get*(multi) into host memory from host |
//! +--------+--------------------+------------------------------------+
//! | Range  |    Description     |               Config               |
//! +--------+--------------------+------------------------------------+
//! | 0..inf | software emulation | tcp/lo                             |
//! +--------+--------------------+------------------------------------+
//! ```
//! UCX 1.13/1.14 put config and operation in one title row and omit the header row.
//! Every line may carry UCX's `[time] [host:pid:thread]` prefix; tables of different
//! processes interleaved in one capture are told apart by that prefix. The endpoint
//! config line reads
//! `<name> intra-node cfg#2 rma_am(tcp/lo) amo_am(tcp/lo) device(cuda_ipc/cuda) am(...)`.
//! A table whose rows do not parse is counted in `skipped_tables`, never guessed at.

use std::collections::HashMap;

use super::proto_table::Table;

/// Longest line considered; longer ones are ignored.
const MAX_LINE: usize = 4096;
/// At most this many selections and endpoint configs are kept.
pub(super) const MAX_SELECTIONS: usize = 4096;
const MAX_CONFIGS: usize = 256;
/// Distinct `[host:pid:thread]` sources tracked at once.
const MAX_SOURCES: usize = 64;

/// The operation a protocol table is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `remote memory write by ucp_put*`.
    Put,
    /// `remote memory read by ucp_get*`.
    Get,
    /// `remote atomic ... by ucp_atomic_*`.
    Atomic,
    /// `active message by ucp_am_send*`.
    ActiveMessage,
    /// `tagged message by ucp_tag_send*`.
    Tag,
    /// `stream message by ucp_stream_send*`.
    Stream,
    /// Anything else, as UCX named it.
    Other(String),
}

impl Operation {
    /// Remote memory access (what RMA probes and NIXL transfers use).
    pub fn is_rma(&self) -> bool {
        matches!(self, Operation::Put | Operation::Get | Operation::Atomic)
    }
}

/// How UCX moves the bytes for one size range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoKind {
    Short,
    CopyIn,
    ZeroCopy,
    /// RMA carried as active messages (no native RMA lane).
    SoftwareEmulation,
    Rendezvous,
    Other,
}

impl ProtoKind {
    pub(super) fn classify(desc: &str) -> ProtoKind {
        let d = desc.to_ascii_lowercase();
        if d.contains("emulation") {
            ProtoKind::SoftwareEmulation
        } else if d.starts_with("rendezvous") {
            ProtoKind::Rendezvous
        } else if d.contains("zero-copy") || d.contains("zcopy") {
            ProtoKind::ZeroCopy
        } else if d.contains("copy-in") || d.contains("bcopy") {
            ProtoKind::CopyIn
        } else if d.starts_with("short") {
            ProtoKind::Short
        } else {
            ProtoKind::Other
        }
    }
}

/// One transport/device a protocol or endpoint lane group uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub transport: String,
    pub device: String,
    /// Share of the traffic when UCX splits it (`52% on tcp/lo and 48% on tcp/eth0`).
    pub share_pct: Option<u8>,
}

impl Lane {
    pub fn is_tcp(&self) -> bool {
        self.transport == "tcp"
    }
}

/// Message sizes a row applies to; `max` None is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    pub min: u64,
    pub max: Option<u64>,
}

impl SizeRange {
    pub fn contains(&self, size: u64) -> bool {
        size >= self.min && self.max.is_none_or(|m| size <= m)
    }
}

/// One row of a protocol table: for `operation` from `local_mem` (to `remote_mem`),
/// messages in `range` use protocol `kind` over `lanes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The endpoint config the table belongs to (`servescope-1 intra-node cfg#1`).
    pub config: String,
    pub operation: Operation,
    /// The operation line as UCX printed it.
    pub operation_text: String,
    /// Local memory (`host`, `cuda/GPU0`).
    pub local_mem: String,
    /// Remote memory for RMA (`host`, `cuda/dev[3]`).
    pub remote_mem: Option<String>,
    pub range: SizeRange,
    pub kind: ProtoKind,
    /// The description column as UCX printed it.
    pub description: String,
    pub lanes: Vec<Lane>,
}

impl Selection {
    /// Memory type of a memory token: `cuda/GPU0` → `cuda`, `host` → `host`.
    pub fn mem_type(token: &str) -> &str {
        token.split('/').next().unwrap_or(token)
    }

    /// Whether both ends' memory types are among `types` (`host`, `cuda`): the
    /// selections that describe the probe's own transfer, not UCX's tables for
    /// memory pairs it never moves.
    pub fn within(&self, types: &[&str]) -> bool {
        let ok = |t: &str| types.is_empty() || types.contains(&Self::mem_type(t));
        ok(&self.local_mem) && self.remote_mem.as_deref().is_none_or(ok)
    }

    /// Whether either end is non-host memory.
    pub fn touches_device_memory(&self) -> bool {
        Self::mem_type(&self.local_mem) != "host"
            || self
                .remote_mem
                .as_deref()
                .is_some_and(|m| Self::mem_type(m) != "host")
    }

    /// One line of evidence: `config | operation | range | description | lanes`.
    pub fn evidence(&self) -> String {
        let max = self.range.max.map_or("inf".to_string(), |m| m.to_string());
        let lanes: Vec<String> = self
            .lanes
            .iter()
            .map(|l| format!("{}/{}", l.transport, l.device))
            .collect();
        format!(
            "{} | {} | {}..{} | {} | {}",
            self.config,
            self.operation_text,
            self.range.min,
            max,
            self.description,
            lanes.join(" ")
        )
    }
}

/// A lane group of an endpoint config (`rma_am(tcp/lo)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneGroup {
    pub role: String,
    pub lanes: Vec<Lane>,
}

/// An endpoint configuration line from `UCX_LOG_LEVEL=info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Worker name as UCX printed it (may be empty).
    pub name: String,
    /// `self`, `intra-node`, `inter-node`.
    pub scope: String,
    pub index: u32,
    pub groups: Vec<LaneGroup>,
    /// The line without UCX's log prefix.
    pub line: String,
}

impl EndpointConfig {
    /// Lanes of the group `role` (empty if absent).
    pub fn group(&self, role: &str) -> &[Lane] {
        self.groups
            .iter()
            .find(|g| g.role == role)
            .map_or(&[][..], |g| &g.lanes[..])
    }
}

/// Everything parsed from one log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoInfo {
    /// `Version 1.23.0` from the info log, if present.
    pub version: Option<String>,
    /// The library path of that line (`loaded from ...`).
    pub library: Option<String>,
    pub selections: Vec<Selection>,
    pub endpoint_configs: Vec<EndpointConfig>,
    /// Tables seen but not understood.
    pub skipped_tables: usize,
}

impl ProtoInfo {
    /// RMA selections that UCX emulates over tcp, and any selection moving device
    /// memory over a tcp lane: the evidence of a KV path that silently fell back.
    pub fn emulated_over_tcp(&self) -> Vec<&Selection> {
        self.selections
            .iter()
            .filter(|s| {
                let tcp = s.lanes.iter().any(Lane::is_tcp);
                tcp && ((s.kind == ProtoKind::SoftwareEmulation && s.operation.is_rma())
                    || s.touches_device_memory())
            })
            .collect()
    }

    /// Selections for `op` covering `size` (deduplicated by evidence line).
    pub fn selected_for(&self, op: &Operation, size: u64) -> Vec<&Selection> {
        let mut seen = std::collections::HashSet::new();
        self.selections
            .iter()
            .filter(|s| &s.operation == op && s.range.contains(size))
            .filter(|s| seen.insert(s.evidence()))
            .collect()
    }
}

/// Parses UCX log text. Never fails: what it does not understand it skips.
pub fn parse(text: &str) -> ProtoInfo {
    let mut out = ProtoInfo::default();
    let mut tables: HashMap<String, Table> = HashMap::new();
    for raw in text.lines() {
        if raw.len() > MAX_LINE {
            continue;
        }
        let (source, body) = split_prefix(raw);
        let body = body.trim();
        if body.starts_with('+') && body.chars().all(|c| c == '+' || c == '-') {
            let t = tables.remove(source);
            match t {
                Some(t) if t.rows.iter().any(|r| r.is_data()) => t.finish(&mut out),
                Some(t) if t.valid => {
                    tables.insert(source.to_string(), t);
                }
                Some(_) => out.skipped_tables += 1,
                None if tables.len() < MAX_SOURCES => {
                    tables.insert(source.to_string(), Table::new());
                }
                None => {}
            }
        } else if body.starts_with('|') && body.ends_with('|') && body.len() >= 2 {
            if let Some(t) = tables.get_mut(source) {
                t.push(&body[1..body.len() - 1]);
            }
        } else if let Some(rest) = info_message(body) {
            info_line(rest, &mut out);
        }
    }
    out.skipped_tables += tables.values().filter(|t| !t.rows.is_empty()).count();
    out
}

/// Splits `[time] [host:pid:thread]   rest` into (`host:pid:thread`, rest).
fn split_prefix(line: &str) -> (&str, &str) {
    let Some(r) = line.strip_prefix('[') else {
        return ("", line);
    };
    let Some(end) = r.find(']') else {
        return ("", line);
    };
    let r = r[end + 1..].trim_start();
    let Some(r2) = r.strip_prefix('[') else {
        return ("", &line[end + 2..]);
    };
    match r2.find(']') {
        Some(e) => (&r2[..e], &r2[e + 1..]),
        None => ("", line),
    }
}

/// The message of a `file.c:NN UCX  INFO  message` line.
fn info_message(body: &str) -> Option<&str> {
    let at = body.find("UCX  INFO")?;
    Some(body[at + "UCX  INFO".len()..].trim())
}

fn info_line(msg: &str, out: &mut ProtoInfo) {
    if let Some(v) = msg.strip_prefix("Version ") {
        let version = v.split_whitespace().next().unwrap_or_default();
        out.version = Some(version.to_string());
        if let Some(at) = v.find("(loaded from ") {
            let path = &v[at + "(loaded from ".len()..];
            let path = path
                .split(',')
                .next()
                .unwrap_or_default()
                .trim_end_matches(')');
            out.library = Some(path.to_string());
        }
    } else if out.endpoint_configs.len() < MAX_CONFIGS {
        if let Some(cfg) = endpoint_config(msg) {
            out.endpoint_configs.push(cfg);
        }
    }
}

/// Parses `<name> <scope> cfg#N role(tl/dev ...) ...`.
fn endpoint_config(msg: &str) -> Option<EndpointConfig> {
    let words: Vec<&str> = msg.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("cfg#"))?;
    let index = words[at].strip_prefix("cfg#")?.parse().ok()?;
    let scope = if at > 0 { words[at - 1] } else { "" };
    let name = words[..at.saturating_sub(1)].join(" ");
    let cfg_pos = msg.find(words[at])? + words[at].len();
    let mut groups = Vec::new();
    let mut rest = msg[cfg_pos..].trim_start();
    while !rest.is_empty() {
        let open = rest.find('(')?;
        let close = rest.find(')')?;
        if close < open {
            return None;
        }
        let role = rest[..open].trim();
        if role.is_empty() || !role.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        groups.push(LaneGroup {
            role: role.to_string(),
            lanes: parse_lanes(&rest[open + 1..close])?,
        });
        rest = rest[close + 1..].trim_start();
    }
    if groups.is_empty() {
        return None;
    }
    Some(EndpointConfig {
        name,
        scope: scope.to_string(),
        index,
        groups,
        line: msg.to_string(),
    })
}

/// `cma/memory`, `tcp/lo cma/memory`, `52% on tcp/lo and 48% on tcp/eth0`.
pub(super) fn parse_lanes(text: &str) -> Option<Vec<Lane>> {
    let mut lanes = Vec::new();
    let mut share = None;
    for w in text.split_whitespace() {
        let w = w.trim_end_matches(',');
        if let Some(p) = w.strip_suffix('%') {
            share = Some(p.parse::<u8>().ok()?);
        } else if let Some((tl, dev)) = w.split_once('/') {
            if tl.is_empty() || dev.is_empty() {
                return None;
            }
            lanes.push(Lane {
                transport: tl.to_string(),
                device: dev.to_string(),
                share_pct: share.take(),
            });
        } else if w != "on" && w != "and" {
            return None;
        }
    }
    Some(lanes)
}

#[cfg(test)]
#[path = "proto_info_tests.rs"]
mod tests;
