//! `servescope startup infer` on a recorded two-GPU node (tensor-parallel ranks):
//! no startup log, so the waterfall is formed from the NVML phases of the slowest
//! rank; both GPUs are shown side by side in the text and the HTML page.

mod common;
#[path = "../../coordinator/tests/nvml_support/mod.rs"]
mod nvml_support;

use std::process::Command;

use common::success;

#[test]
fn startup_infer_two_gpus_side_by_side_and_a_waterfall_from_nvml() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let html = dir.path().join("infer.html");
    let mut store = servescope_coordinator::Store::open(&db).unwrap();
    let run = nvml_support::store_with(&mut store, &nvml_support::two_gpu_node());
    drop(store);
    let so = success(
        Command::new(env!("CARGO_BIN_EXE_servescope"))
            .args(["startup", "infer", &run.to_string(), "--db"])
            .arg(&db)
            .arg("-o")
            .arg(&html),
    );
    println!("{so}");
    assert!(so.contains("2 GPU(s) with a cold start"), "{so}");
    assert!(
        so.contains("node-a GPU 0") && so.contains("node-a GPU 1*"),
        "{so}"
    );
    let row = |label: &str| {
        so.lines()
            .find(|l| l.starts_with(label) && l.contains("nvml"))
            .unwrap_or_else(|| panic!("no {label} row from nvml in {so}"))
            .to_string()
    };
    // The waterfall: the slowest rank's (disk-bound, 8.4 s) weight load.
    assert!(row("Model loading").contains(" 8.40 "), "{so}");
    row("  Torch compile");
    row("  CUDA graph capture");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Per-GPU cold start"), "{page}");
    assert!(page.contains("node-a GPU 1 pid 4101 (slowest)"), "{page}");
}
