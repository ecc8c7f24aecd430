//! Helpers shared by the startup-log tests: the fixture directory, its files and the
//! parse options they were written with.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use servescope_coordinator::analysis::startup::{parse_file, LogParse, ParseOptions};

pub fn dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vllm-startup-logs"
    ))
    .to_path_buf()
}

pub const FILES: [&str; 5] = [
    "llama70b-base.log",
    "llama70b-s3-runai.log",
    "llama70B-all.log",
    "qwen235B-base.log",
    "qwen235B-compile-cache.log",
];

/// The logs were written on a UTC−7 clock (their xet JSON lines carry UTC).
pub fn opts() -> ParseOptions {
    let mut o = ParseOptions::new(2025);
    o.utc_offset_s = -7 * 3600;
    o
}

pub fn parse(name: &str) -> LogParse {
    parse_file(&dir().join(name), opts()).unwrap()
}
