//! Rules on a recording's telemetry: GPUs, PCIe and NVLink, RDMA ports, and the
//! agent's own cost.

use servescope_proto::v1::{Event, GpuReading};

use super::*;

#[test]
fn a_clean_recording_raises_nothing() {
    assert_quiet(&clean());
}

#[test]
fn hardware_thermal_throttling_names_its_reason() {
    let mut n = clean();
    n.gpu = |k, i| GpuReading {
        throttle_reasons: Some(if i == 1 && k >= 50 { 0x40 } else { 0 }),
        sm_clock_mhz: Some(if i == 1 && k >= 50 { 1200 } else { 1980 }),
        ..gpu(i)
    };
    let f = only(n, "gpu_throttled");
    assert_eq!(f.severity, Severity::Critical);
    let e = f.evidence.join("\n");
    assert!(
        e.contains("GPU 1")
            && e.contains("HW thermal slowdown")
            && e.contains("+5.0 s")
            && e.contains("1200 MHz"),
        "{e}"
    );
}

#[test]
fn xids_are_classified_with_their_action() {
    let mut n = clean();
    let xid = |x: u64| Event {
        kind: "xid".into(),
        source: "kmsg".into(),
        gpu_index: Some(0),
        xid: Some(x),
        message: "NVRM: Xid".into(),
        ..Default::default()
    };
    n.events = vec![(30, xid(13)), (40, xid(79))];
    let f = only(n, "gpu_xid");
    assert_eq!(f.severity, Severity::Critical);
    let e = f.evidence.join("\n");
    assert!(
        e.contains("XID 13") && e.contains("application error") && e.contains("+3.0 s"),
        "{e}"
    );
    assert!(
        e.contains("XID 79") && e.contains("fallen off the bus") && e.contains("drain the node"),
        "{e}"
    );
    // An application XID alone is a warning.
    let mut n = clean();
    n.events = vec![(30, xid(31))];
    assert_eq!(only(n, "gpu_xid").severity, Severity::Warning);
}

#[test]
fn a_pcie_link_below_its_maximum_is_named() {
    let mut n = clean();
    n.gpu = |_, i| GpuReading {
        pcie_link_width: Some(if i == 0 { 8 } else { 16 }),
        ..gpu(i)
    };
    let f = only(n, "pcie_link_degraded");
    assert_first_evidence(&f, &["Gen5 x8 of Gen5 x16"]);
    // An idle GPU's link trains down to save power: not a finding.
    let mut n = clean();
    n.gpu = |_, i| GpuReading {
        pcie_link_gen: Some(1),
        util_gpu_pct: Some(0),
        ..gpu(i)
    };
    assert_quiet(&n);
}

#[test]
fn rising_pcie_replays_are_named() {
    let mut n = clean();
    n.gpu = |k, i| GpuReading {
        pcie_replay_count: Some(7 + if i == 1 { k } else { 0 }),
        ..gpu(i)
    };
    let f = only(n, "pcie_replays_rising");
    assert_first_evidence(&f, &["GPU 1", "99 PCIe replays"]);
}

#[test]
fn a_gpu_with_fewer_nvlinks_than_its_peers_is_named() {
    let mut n = clean();
    n.inv.gpus[1].nvlink_links = 12;
    let f = only(n, "nvlink_inactive");
    assert_first_evidence(&f, &["GPU 1", "12 active NVLink links", "have 18"]);
}

#[test]
fn gpu_memory_near_full_while_serving_is_named() {
    let mut n = clean();
    n.gpu = |_, i| GpuReading {
        memory_used_bytes: Some(if i == 0 { 79 << 30 } else { 72 << 30 }),
        ..gpu(i)
    };
    let f = only(n, "gpu_memory_near_full");
    assert_first_evidence(&f, &["GPU 0", "79.00 of 80.00 GiB"]);
}

/// A port's state line, down or active.
fn state(down: bool) -> &'static str {
    if down {
        "1: DOWN"
    } else {
        "4: ACTIVE"
    }
}

#[test]
fn a_port_down_then_up_is_a_link_down_and_twice_is_flapping() {
    let mut n = clean();
    n.rdma = |k| port(k, state((40..60).contains(&k)), 10);
    let f = only(n, "nic_link_down");
    assert_first_evidence(
        &f,
        &["rdmap0 port 1", "down at +4.0 s", "up again 2.0 s later"],
    );
    let mut n = clean();
    n.rdma = |k| port(k, state((20..30).contains(&k) || (60..70).contains(&k)), 10);
    let f = only(n, "nic_link_flapping");
    assert_first_evidence(&f, &["+2.0 s", "+6.0 s"]);
}

#[test]
fn rising_retransmits_are_named_and_a_few_are_not() {
    let mut n = clean();
    n.rdma = |k| {
        port(
            k,
            "4: ACTIVE",
            if k >= 50 { 10 + 50 * (k - 49) } else { 10 },
        )
    };
    let f = only(n, "rdma_retransmits_rising");
    assert_first_evidence(&f, &["retrans_pkts +2500", "rising from +5.0 s"]);
    let mut n = clean();
    n.rdma = |k| port(k, "4: ACTIVE", 10 + k / 10);
    assert_quiet(&n);
}

#[test]
fn a_costly_agent_is_named() {
    let mut n = clean();
    n.self_cpu_per_tick = 0.005; // 5 % of a core
    let f = only(n, "agent_overhead_high");
    assert_first_evidence(&f, &["5.00 % of one core"]);
}

#[test]
fn an_agent_inside_another_program_is_not_blamed_for_its_cpu() {
    let mut n = clean();
    n.self_cpu_per_tick = 0.005;
    n.embedded = true;
    assert_quiet(&n);
}
