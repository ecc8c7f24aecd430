//! The crate's layers and their one direction of use, checked on the source text:
//! `store` (and the `text` helpers) name no other layer; `analysis` names only
//! `store` and `text`; `report` names no `orchestration`. A file that names a
//! layer it may not use, by a `crate::` path or by `super::` paths that climb into
//! it, fails the test with the file and the line.

use std::path::{Path, PathBuf};

/// The layers, lowest first; each may use only those before it.
const LAYERS: [&str; 4] = ["store", "analysis", "report", "orchestration"];

/// Top-level modules every layer may use.
const HELPERS: [&str; 1] = ["text"];

/// The layers a file in `layer` may not name.
fn forbidden(layer: &str) -> &'static [&'static str] {
    match LAYERS.iter().position(|l| *l == layer) {
        Some(i) => &LAYERS[i + 1..],
        None if HELPERS.contains(&layer) => &LAYERS,
        None => &[],
    }
}

/// A source file's module path: `analysis/pd/kv.rs` → `[analysis, pd, kv]`,
/// `analysis/pd/mod.rs` → `[analysis, pd]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_string());
        }
    }
    parts
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a line names: `crate::X` gives X; a run of `super::`
/// gives the module it climbs to. Inline modules (`mod tests { … }`) are not
/// counted as a level, which can only make a climb look higher than it is.
fn named_top_levels(module: &[String], line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(ident_at(&rest[i + "crate::".len()..]).to_string());
        }
        rest = &rest[i + "crate::".len()..];
    }
    let mut rest = line;
    while let Some(i) = rest.find("super::") {
        let before = rest[..i].chars().next_back();
        let mut tail = &rest[i..];
        let mut ups = 0;
        while let Some(t) = tail.strip_prefix("super::") {
            ups += 1;
            tail = t;
        }
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            let kept = module.len().saturating_sub(ups);
            let top = match module.first() {
                Some(first) if kept > 0 => first.clone(),
                _ => ident_at(tail).to_string(),
            };
            out.push(top);
        }
        rest = tail;
    }
    out
}

/// `(file, line number, layer named)` for every use against the direction.
fn violations(file: &Path, rel: &Path, text: &str) -> Vec<(PathBuf, usize, String)> {
    let module = module_path(rel);
    let Some(layer) = module.first() else {
        return Vec::new();
    };
    let banned = forbidden(layer);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for top in named_top_levels(&module, line) {
            if banned.contains(&top.as_str()) {
                out.push((file.to_path_buf(), n + 1, top));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    let mut checked = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let text = std::fs::read_to_string(f).expect("readable source");
        checked += 1;
        found.extend(violations(f, rel, &text));
    }
    assert!(
        checked > 50,
        "only {checked} files found under {}",
        src.display()
    );
    let lines: Vec<String> = found
        .iter()
        .map(|(f, n, top)| format!("{}:{n} names {top}", f.display()))
        .collect();
    assert!(
        lines.is_empty(),
        "uses against the layer direction:\n{}",
        lines.join("\n")
    );
}

#[test]
fn the_checker_sees_crate_and_climbing_super_paths() {
    let check = |rel: &str, line: &str| {
        violations(Path::new(rel), Path::new(rel), line)
            .into_iter()
            .map(|(_, _, top)| top)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        check("analysis/pd/kv.rs", "use crate::report::svg;"),
        ["report"]
    );
    assert_eq!(
        check("store/mod.rs", "use crate::analysis::rates;"),
        ["analysis"]
    );
    assert_eq!(check("text.rs", "use crate::store::Store;"), ["store"]);
    assert_eq!(
        check("report/pd.rs", "x(crate::orchestration::pd_run::pd_run)"),
        ["orchestration"]
    );
    // analysis/pd/kv.rs → super = analysis::pd, super::super = analysis,
    // super::super::super = the crate root.
    assert_eq!(
        check("analysis/pd/kv.rs", "use super::super::super::report::svg;"),
        ["report"]
    );
    assert!(check("analysis/pd/kv.rs", "use super::super::rates;").is_empty());
    assert!(check("analysis/pd/mod.rs", "use super::super::store::Store;").is_empty());
    assert_eq!(
        check("analysis/pd/mod.rs", "use super::super::orchestration;"),
        ["orchestration"]
    );
    assert!(check(
        "report/pd.rs",
        "use crate::analysis::pd; use crate::store::Store;"
    )
    .is_empty());
    assert!(check("orchestration/pd_run.rs", "use crate::report::pd;").is_empty());
    assert!(check("analysis/x.rs", "use mycrate::report;").is_empty());
}
