//! One UCX protocol table being read (rows, titles) and its cells parsed: size
//! ranges, the operation line. Used by proto_info.rs.

use super::proto_info::{
    parse_lanes, Lane, Operation, ProtoInfo, ProtoKind, Selection, SizeRange, MAX_SELECTIONS,
};

/// Rows of one table beyond this make the table invalid.
const MAX_ROWS: usize = 64;

/// `0`, `1..16515`, `4G..inf`.
fn parse_range(text: &str) -> Option<SizeRange> {
    match text.split_once("..") {
        Some((a, b)) => {
            let min = parse_size(a)?;
            let max = if b == "inf" {
                None
            } else {
                Some(parse_size(b)?)
            };
            Some(SizeRange { min, max })
        }
        None => {
            let v = parse_size(text)?;
            Some(SizeRange {
                min: v,
                max: Some(v),
            })
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let (num, shift) = match text.as_bytes().last()? {
        b'K' => (&text[..text.len() - 1], 10),
        b'M' => (&text[..text.len() - 1], 20),
        b'G' => (&text[..text.len() - 1], 30),
        b'T' => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `remote memory write by ucp_put*(multi) from host memory to host` →
/// (operation, local, remote).
fn parse_operation(text: &str) -> Option<(Operation, String, Option<String>)> {
    let (what, rest) = text.split_once(" by ")?;
    let op = match what {
        "remote memory write" => Operation::Put,
        "remote memory read" => Operation::Get,
        "active message" => Operation::ActiveMessage,
        "tagged message" => Operation::Tag,
        "stream message" => Operation::Stream,
        w if w.contains("atomic") => Operation::Atomic,
        w => Operation::Other(w.to_string()),
    };
    let mem = |key: &str| -> Option<String> {
        let at = rest.find(key)? + key.len();
        let token = rest[at..].split_whitespace().next()?;
        Some(token.to_string())
    };
    let (local, remote) = match op {
        Operation::Get => (mem(" into ")?, mem(" from ")),
        _ => (mem(" from ")?, mem(" to ")),
    };
    Some((op, local, remote))
}

/// One table being read for one `[host:pid:thread]` source.
pub(super) struct Table {
    titles: Vec<String>,
    pub rows: Vec<Row>,
    pub valid: bool,
}

pub(super) enum Row {
    Data(SizeRange, String, Vec<Lane>),
    Header,
}

impl Row {
    pub fn is_data(&self) -> bool {
        matches!(self, Row::Data(..))
    }
}

impl Table {
    pub fn new() -> Self {
        Table {
            titles: Vec::new(),
            rows: Vec::new(),
            valid: true,
        }
    }

    pub fn push(&mut self, inner: &str) {
        let cells: Vec<&str> = inner.split('|').map(str::trim).collect();
        if self.rows.len() >= MAX_ROWS {
            self.valid = false;
            return;
        }
        match cells.as_slice() {
            [title] => self.titles.push(title.to_string()),
            [cfg, op] if self.rows.is_empty() => {
                self.titles.push(cfg.to_string());
                self.titles.push(op.to_string());
            }
            ["Range", "Description", "Config"] => self.rows.push(Row::Header),
            [range, desc, cfg] => match (parse_range(range), parse_lanes(cfg)) {
                (Some(r), Some(l)) if !l.is_empty() => {
                    self.rows.push(Row::Data(r, desc.to_string(), l))
                }
                _ => self.valid = false,
            },
            _ => self.valid = false,
        }
    }

    pub fn finish(self, out: &mut ProtoInfo) {
        let parsed = match self.titles.as_slice() {
            [cfg, op] if self.valid => parse_operation(op).map(|o| (cfg.clone(), op.clone(), o)),
            _ => None,
        };
        let Some((config, operation_text, (operation, local, remote))) = parsed else {
            out.skipped_tables += 1;
            return;
        };
        for row in self.rows {
            let Row::Data(range, description, lanes) = row else {
                continue;
            };
            if out.selections.len() >= MAX_SELECTIONS {
                return;
            }
            out.selections.push(Selection {
                config: config.clone(),
                operation: operation.clone(),
                operation_text: operation_text.clone(),
                local_mem: local.clone(),
                remote_mem: remote.clone(),
                range,
                kind: ProtoKind::classify(&description),
                description,
                lanes,
            });
        }
    }
}
