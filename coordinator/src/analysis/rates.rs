//! Rates from cumulative counters. NVML's PCIe counters advance in bursts (a
//! reading of ~2.9 GB/s then zeros at 200 ms sampling), so rates are taken over a
//! window of at least `window_ns`, not between adjacent samples.

use std::collections::{HashMap, VecDeque};

use servescope_proto::v1::{RdmaDeviceInfo, RdmaDeviceReading, RdmaPortReading};

/// Rate of one counter over a sliding window.
#[derive(Debug, Clone)]
pub struct Rate {
    window_ns: u64,
    points: VecDeque<(u64, u64)>,
}

impl Rate {
    pub fn new(window_ns: u64) -> Self {
        Rate {
            window_ns,
            points: VecDeque::new(),
        }
    }

    /// Adds a reading; returns the rate per second over the window, once the
    /// readings span at least half of it. A counter going backwards restarts.
    pub fn push(&mut self, t_ns: u64, v: u64) -> Option<f64> {
        if let Some(&(lt, lv)) = self.points.back() {
            if v < lv || t_ns <= lt {
                self.points.clear();
            }
        }
        self.points.push_back((t_ns, v));
        while self.points.len() > 2
            && self
                .points
                .get(1)
                .is_some_and(|&(t, _)| t_ns - t >= self.window_ns)
        {
            self.points.pop_front();
        }
        let &(t0, v0) = self.points.front()?;
        let dt = t_ns.saturating_sub(t0);
        if dt == 0 || dt < self.window_ns / 2 {
            return None;
        }
        Some((v - v0) as f64 * 1e9 / dt as f64)
    }
}

/// Rates keyed by name.
#[derive(Debug, Default)]
pub struct Rates {
    window_ns: u64,
    by_key: HashMap<String, Rate>,
}

impl Rates {
    pub fn new(window_ns: u64) -> Self {
        Rates {
            window_ns,
            by_key: HashMap::new(),
        }
    }

    pub fn push(&mut self, key: &str, t_ns: u64, v: u64) -> Option<f64> {
        let w = self.window_ns;
        self.by_key
            .entry(key.to_string())
            .or_insert_with(|| Rate::new(w))
            .push(t_ns, v)
    }
}

/// Transmitted and received bytes of an RDMA device, summed over its ports:
/// EFA's `hw_counters/tx_bytes`/`rx_bytes`, else InfiniBand's
/// `counters/port_xmit_data`/`port_rcv_data` (in 4-byte words).
pub fn rdma_bytes(info: &RdmaDeviceInfo, r: &RdmaDeviceReading) -> Option<(u64, u64)> {
    let mut found = false;
    let (mut tx, mut rx) = (0u64, 0u64);
    for port in &r.ports {
        let Some(pi) = info.ports.iter().find(|p| p.port == port.port) else {
            continue;
        };
        let get = |name: &str| {
            if port_counter_failed(&r.device, port, name) {
                return None;
            }
            pi.counter_names
                .iter()
                .position(|n| n == name)
                .and_then(|i| port.values.get(i).copied())
        };
        if let (Some(t), Some(x)) = (get("hw_counters/tx_bytes"), get("hw_counters/rx_bytes")) {
            tx += t;
            rx += x;
            found = true;
        } else if let (Some(t), Some(x)) = (
            get("counters/port_xmit_data"),
            get("counters/port_rcv_data"),
        ) {
            tx += t.saturating_mul(4);
            rx += x.saturating_mul(4);
            found = true;
        }
    }
    found.then_some((tx, rx))
}

/// Whether the agent failed to read port counter `name` (as named in
/// `RdmaPortInfo.counter_names`) in this reading: its value is then a placeholder 0
/// and must not be taken for a count. The agent names the error
/// `<device>/<port>/<name>`.
pub fn port_counter_failed(device: &str, port: &RdmaPortReading, name: &str) -> bool {
    port.errors.iter().any(|e| {
        e.field
            .strip_prefix(device)
            .and_then(|f| f.strip_prefix('/'))
            .and_then(|f| f.split_once('/'))
            .is_some_and(|(p, n)| n == name && p.parse() == Ok(port.port))
    })
}

/// Whether the agent failed to read device-level counter `name` (as named in
/// `RdmaDeviceInfo.device_counter_names`): the agent names the error
/// `<device>/hw_counters/<name>`.
pub fn device_counter_failed(r: &RdmaDeviceReading, name: &str) -> bool {
    r.errors.iter().any(|e| {
        e.field
            .strip_prefix(r.device.as_str())
            .and_then(|f| f.strip_prefix("/hw_counters/"))
            == Some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::{RdmaPortInfo, RdmaPortReading};

    #[test]
    fn bursty_counter_gives_smooth_rate() {
        let mut r = Rate::new(1_000_000_000);
        // 2.9 GB in one 200 ms burst every 400 ms → 7.25 GB/s average... use 1 GB per 400 ms = 2.5 GB/s.
        let mut v = 0;
        let mut last = None;
        for i in 0..20u64 {
            if i % 2 == 0 {
                v += 1_000_000_000;
            }
            last = r.push(i * 200_000_000, v).or(last);
        }
        let rate = last.unwrap();
        assert!((rate - 2.5e9).abs() / 2.5e9 < 0.25, "{rate}");
    }

    #[test]
    fn reset_restarts() {
        let mut r = Rate::new(100);
        r.push(0, 1000);
        r.push(100, 2000);
        assert_eq!(r.push(200, 10), None);
    }

    /// An EFA device with one port counting rx then tx bytes.
    fn efa_info() -> RdmaDeviceInfo {
        RdmaDeviceInfo {
            name: "rdmap0".into(),
            ports: vec![RdmaPortInfo {
                port: 1,
                counter_names: vec!["hw_counters/rx_bytes".into(), "hw_counters/tx_bytes".into()],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn efa_and_ib_bytes() {
        let info = efa_info();
        let r = RdmaDeviceReading {
            device: "rdmap0".into(),
            ports: vec![RdmaPortReading {
                port: 1,
                values: vec![10, 20],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(rdma_bytes(&info, &r), Some((20, 10)));
        let mut ib = info.clone();
        ib.ports[0].counter_names = vec![
            "counters/port_rcv_data".into(),
            "counters/port_xmit_data".into(),
        ];
        assert_eq!(rdma_bytes(&ib, &r), Some((80, 40)));
    }

    /// A counter the agent could not read reads 0 with an error: the reading has no
    /// byte count then (a 0 would turn the next delta into the counter's full value,
    /// or a window's last reading into "nothing moved").
    #[test]
    fn unreadable_counters_are_not_zero_bytes() {
        let info = RdmaDeviceInfo {
            device_counter_names: vec!["rdma_read_bytes".into()],
            ..efa_info()
        };
        let err = |field: &str| servescope_proto::v1::FieldError {
            field: field.into(),
            error: "invalid digit found in string".into(),
        };
        let mut r = RdmaDeviceReading {
            device: "rdmap0".into(),
            values: vec![0],
            ports: vec![RdmaPortReading {
                port: 1,
                values: vec![10, 0],
                errors: vec![err("rdmap0/1/hw_counters/tx_bytes")],
                ..Default::default()
            }],
            errors: vec![err("rdmap0/hw_counters/rdma_read_bytes")],
            values_stale: false,
        };
        assert_eq!(rdma_bytes(&info, &r), None);
        assert!(device_counter_failed(&r, "rdma_read_bytes"));
        assert!(!device_counter_failed(&r, "rdma_write_bytes"));
        // Another port's or device's error leaves this one alone.
        r.ports[0].errors = vec![
            err("rdmap0/2/hw_counters/tx_bytes"),
            err("rdmap1/1/hw_counters/tx_bytes"),
        ];
        assert_eq!(rdma_bytes(&info, &r), Some((0, 10)));
    }
}
