//! XID events (the NVIDIA driver's error codes), classified with the action each
//! calls for, the way GPU health checkers classify them: the Kubernetes device
//! plugin treats 13, 31, 43, 45 and 68 as application errors that leave the GPU
//! healthy and every other XID as making it unhealthy; gpud attaches repair
//! actions (reboot, hardware inspection, none) per XID. The table is data; an XID
//! missing from it is reported as unclassified.

use super::telemetry::Telemetry;
use super::{Finding, Severity};

/// What an XID calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum XidAction {
    /// Informational: the driver corrected it.
    None,
    /// The application faulted; the GPU stays healthy: fix or restart the application.
    CheckApplication,
    /// Restart the affected application; reset the GPU when convenient.
    RestartAppResetGpu,
    /// Reset the GPU or reboot the node before serving on it again.
    ResetGpuOrReboot,
    /// Drain the node, reboot, and have the hardware inspected if it repeats.
    DrainRebootInspect,
}

impl XidAction {
    pub fn text(self) -> &'static str {
        match self {
            XidAction::None => "no action (corrected by the driver)",
            XidAction::CheckApplication => {
                "application error, the GPU stays healthy: check the application (kernel fault, out-of-bounds access) and restart it"
            }
            XidAction::RestartAppResetGpu => {
                "restart the affected application; reset the GPU or reboot when convenient so the row remapping takes effect"
            }
            XidAction::ResetGpuOrReboot => {
                "stop the workload on this GPU and reset it (nvidia-smi -r) or reboot the node; inspect the hardware if it repeats"
            }
            XidAction::DrainRebootInspect => {
                "drain the node, reboot it, and have the GPU/baseboard inspected if it repeats"
            }
        }
    }

    fn severity(self) -> Severity {
        match self {
            XidAction::None | XidAction::CheckApplication => Severity::Warning,
            _ => Severity::Critical,
        }
    }
}

/// (XID, name, action).
pub const XID_TABLE: &[(u64, &str, XidAction)] = &[
    (13, "Graphics engine exception", XidAction::CheckApplication),
    (31, "GPU memory page fault", XidAction::CheckApplication),
    (43, "GPU stopped processing", XidAction::CheckApplication),
    (
        45,
        "Preemptive cleanup, due to previous errors",
        XidAction::CheckApplication,
    ),
    (48, "Double-bit ECC error", XidAction::ResetGpuOrReboot),
    (
        63,
        "ECC page retirement / row remapping recording event",
        XidAction::RestartAppResetGpu,
    ),
    (
        64,
        "ECC page retirement / row remapper failure",
        XidAction::DrainRebootInspect,
    ),
    (68, "Video processor exception", XidAction::CheckApplication),
    (74, "NVLink error", XidAction::ResetGpuOrReboot),
    (
        79,
        "GPU has fallen off the bus",
        XidAction::DrainRebootInspect,
    ),
    (92, "High single-bit ECC error rate", XidAction::None),
    (94, "Contained ECC error", XidAction::RestartAppResetGpu),
    (95, "Uncontained ECC error", XidAction::DrainRebootInspect),
    (119, "GSP RPC timeout", XidAction::ResetGpuOrReboot),
    (120, "GSP error", XidAction::ResetGpuOrReboot),
];

/// The name and action of an XID, if classified.
pub fn classify(xid: u64) -> Option<(&'static str, XidAction)> {
    XID_TABLE
        .iter()
        .find(|(x, _, _)| *x == xid)
        .map(|(_, n, a)| (*n, *a))
}

/// `gpu_xid`: every XID event of the run, with its class and action.
pub fn gpu_xid(t: &Telemetry) -> Option<Finding> {
    let mut evidence = Vec::new();
    let mut worst: Option<XidAction> = None;
    let mut unclassified = false;
    for h in &t.hosts {
        for (ts, e) in h.events.iter().filter(|(_, e)| e.kind == "xid") {
            let Some(xid) = e.xid else { continue };
            let gpu = match e.gpu_index {
                Some(i) => h.gpu_label(i),
                None if !e.pci_bus_id.is_empty() => format!("{} GPU {}", h.host, e.pci_bus_id),
                None => format!("{} (GPU unknown)", h.host),
            };
            let class = match classify(xid) {
                Some((name, action)) => {
                    worst = worst.max(Some(action));
                    format!("{name}: {}", action.text())
                }
                None => {
                    unclassified = true;
                    "not in servescope's table: look it up in NVIDIA's XID catalogue".into()
                }
            };
            evidence.push(format!(
                "XID {xid} on {gpu} at {} (from {}): {class}{}",
                h.when(t.started_ns, *ts),
                e.source,
                if e.message.is_empty() {
                    String::new()
                } else {
                    format!(" — \"{}\"", e.message)
                }
            ));
        }
    }
    if evidence.is_empty() {
        return None;
    }
    let severity = match worst {
        Some(a) if !unclassified => a.severity(),
        _ => Severity::Critical,
    };
    Some(Finding {
        rule: "gpu_xid",
        severity,
        title: format!("{} XID event(s) during the run", evidence.len()),
        evidence,
        fix: format!(
            "Act on the most severe: {}; results measured on an affected GPU after the event are not representative.",
            worst.map_or("classify the XID first", |a| a.text())
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_xids_leave_the_gpu_healthy_and_hardware_ones_do_not() {
        for x in [13, 31, 43, 45, 68] {
            assert_eq!(
                classify(x).map(|c| c.1),
                Some(XidAction::CheckApplication),
                "{x}"
            );
        }
        for x in [48, 64, 74, 79, 95] {
            assert!(
                classify(x).is_some_and(|c| c.1.severity() == Severity::Critical),
                "{x}"
            );
        }
        assert_eq!(classify(92).map(|c| c.1), Some(XidAction::None));
        assert_eq!(classify(1234), None);
    }
}
