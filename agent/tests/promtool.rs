//! `promtool check metrics` on the `/metrics` text: the 0.0.4 parser plus the
//! Prometheus lint rules (HELP present, counters end in `_total`, base units, no
//! camelCase, no unit abbreviations, ...). Lint findings make promtool exit non-zero
//! and fail this test. Skipped when promtool is not installed.

use std::io::Write;
use std::process::{Command, Stdio};

use servescope_agent::exposition::{example_node, example_output, render, RenderOptions};
use servescope_proto::v1::{Inventory, Sample};

/// The promtool binary, or `None` (with a note) when it is not installed.
fn promtool() -> Option<&'static str> {
    match Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Some("promtool"),
        Err(_) => {
            println!("skipping: promtool not installed (apt-get install prometheus)");
            None
        }
    }
}

fn check(promtool: &str, what: &str, text: &str) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write metrics");
    file.flush().expect("flush metrics");
    let stdin = std::fs::File::open(file.path()).expect("reopen metrics");
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(stdin)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check metrics rejected {what} ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

#[test]
fn promtool_accepts_a_p5_like_node() {
    let Some(p) = promtool() else { return };
    let text = example_output();
    assert!(text.contains("servescope_gpu_xid_errors_total{"));
    assert!(text.contains("servescope_rdma_port_rdma_read_bytes_total{"));
    check(p, "example_output()", &text);
}

#[test]
fn promtool_accepts_a_node_without_gpus_or_samples() {
    let Some(p) = promtool() else { return };
    check(
        p,
        "an empty inventory",
        &render(&Inventory::default(), &[], &[]),
    );
}

#[test]
fn promtool_accepts_odd_names_and_options() {
    let Some(p) = promtool() else { return };
    let (mut inv, samples) = example_node();
    // sysfs names that need sanitizing, and one that collapses onto another.
    for d in &mut inv.rdma_devices {
        for port in &mut d.ports {
            port.counter_names.push("hw_counters/Odd-Name.v2".into());
            port.counter_names.push("hw_counters/odd_name_v2".into());
        }
    }
    inv.hostname = "host \"with\" \\odd\nname".into();
    let refs: Vec<&Sample> = samples.iter().collect();
    let text = servescope_agent::exposition::render_with(
        &inv,
        &refs,
        &[],
        &RenderOptions { per_process: false },
    );
    check(p, "odd names", &text);
}
