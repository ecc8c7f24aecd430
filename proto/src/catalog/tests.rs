use std::collections::BTreeSet;

use super::rdma::{CounterFamily, Scope};
use super::*;

fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !s.starts_with("__")
}

#[test]
fn metric_table_is_consistent() {
    let mut names = BTreeSet::new();
    for d in families() {
        assert!(names.insert(d.name), "duplicate {}", d.name);
        assert!(
            is_name(d.name) && d.name.starts_with("servescope_"),
            "{}",
            d.name
        );
        assert!(d
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        assert!(!d.help.is_empty() && !d.help.contains('\n') && !d.help.contains('\\'));
        let base = match d.kind {
            MetricType::Counter => d
                .name
                .strip_suffix("_total")
                .unwrap_or_else(|| panic!("counter {} lacks _total", d.name)),
            MetricType::Gauge => {
                assert!(!d.name.ends_with("_total"), "gauge {}", d.name);
                d.name
            }
        };
        if let Some(suffix) = d.unit.suffix() {
            assert!(base.ends_with(suffix), "{} should end in {suffix}", d.name);
        }
        for reserved in ["_count", "_sum", "_bucket"] {
            assert!(!d.name.ends_with(reserved), "{}", d.name);
        }
        let labels: BTreeSet<&str> = d.labels.iter().copied().collect();
        assert_eq!(labels.len(), d.labels.len(), "{} repeats a label", d.name);
        assert!(d.labels.iter().all(|l| is_label_name(l)), "{}", d.name);
    }
    assert_eq!(
        families().count(),
        sampled_families().count() + inventory_families().count()
    );
}

#[test]
fn rdma_names_are_sanitized() {
    let f = |raw: &str| CounterFamily(Scope::Port, raw).to_string();
    assert_eq!(
        f("hw_counters/rdma_read_bytes"),
        "servescope_rdma_port_rdma_read_bytes_total"
    );
    assert_eq!(
        f("counters/port_xmit_data"),
        "servescope_rdma_port_counters_port_xmit_data_total"
    );
    assert_eq!(
        f("hw_counters/Weird-Name.x"),
        "servescope_rdma_port_weird_name_x_total"
    );
    assert_eq!(f("hw_counters/é"), "servescope_rdma_port___total");
    assert_eq!(
        CounterFamily(Scope::Device, "submitted_cmds").to_string(),
        "servescope_rdma_device_submitted_cmds_total"
    );
    assert!(!rdma::exported("hw_counters/lifespan") && !rdma::exported("counters/"));
    assert!(rdma::exported("hw_counters/tx_bytes"));
}

#[test]
fn helpers() {
    use rdma::{parse_rate_bytes_per_second, port_active};
    assert_eq!(
        parse_rate_bytes_per_second("100 Gb/sec (4X EDR)"),
        Some(12.5e9)
    );
    assert_eq!(
        parse_rate_bytes_per_second("400 Gb/sec (4X NDR)"),
        Some(50e9)
    );
    assert_eq!(parse_rate_bytes_per_second(""), None);
    assert_eq!(parse_rate_bytes_per_second("fast"), None);
    assert!(port_active("4: ACTIVE"));
    assert!(port_active("ACTIVE"));
    assert!(port_active("5: ACTIVE_DEFER"));
    assert!(!port_active("1: DOWN"));
    assert!(!port_active(""));
    assert!(link_up("up", None) && link_up("up", Some(true)));
    assert!(!link_up("up", Some(false)) && !link_up("down", Some(true)));
    assert_eq!(Value::Float32(0.1).as_f64(), 0.1);
    assert_eq!(Value::Float32(0.1).to_string(), "0.1");
    assert_eq!(ns_secs(1_500_000_000), Value::Float(1.5));
}
