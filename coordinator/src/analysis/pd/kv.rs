//! KV-transfer analysis: what the decode instances' `vllm:nixl_*` metrics say was
//! moved (bytes, transfers, pure transfer time, failures; expiries on P), the
//! effective bandwidth against the fabric probe's measured capacity, the rate over
//! time, and the nodes' counters over the same window: did the bytes cross RDMA
//! (EFA `hw_counters/tx_bytes`…), the kernel network stack (TCP), or neither?

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use servescope_proto::v1::sample;

use super::decompose::KvRate;
use crate::analysis::engine::prom::Exposition;
use crate::analysis::engine::window::{hist_delta, EngineWindow};
use crate::store::Store;

/// One decode instance's transfers over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KvTarget {
    pub target: String,
    pub transfers: f64,
    pub bytes: f64,
    /// Σ NIXL transfer time (per handle), s.
    pub xfer_s: f64,
    /// bytes ÷ Σ transfer time, GB/s (10⁹ B/s).
    pub gbps: Option<f64>,
    pub mb_per_transfer: Option<f64>,
    pub xfer_ms_p50: Option<f64>,
    pub xfer_ms_p99: Option<f64>,
    pub failed: f64,
    pub prompt_tokens: f64,
}

/// The KV rate over time at one decode instance (between consecutive scrapes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvSeriesPoint {
    pub target: String,
    pub t_ns: u64,
    /// Bytes moved per wall-clock second in the interval, GB/s.
    pub wall_gbps: f64,
}

/// Byte counters of one node over the run window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeBytes {
    pub host: String,
    pub rdma_tx_bytes: u64,
    pub rdma_rx_bytes: u64,
    /// Kernel network interfaces (loopback excluded).
    pub net_tx_bytes: u64,
    pub net_rx_bytes: u64,
    pub rdma_devices: usize,
}

/// Where the KV bytes went, by the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    Rdma,
    Tcp,
    /// Neither counter moved by the KV bytes: same node (NVLink, shared memory).
    NotOnNetwork,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KvAnalysis {
    pub targets: Vec<KvTarget>,
    pub transfers: f64,
    pub bytes: f64,
    pub failed: f64,
    /// Requests whose blocks P released unread (lease expired).
    pub expired: f64,
    /// Request ids the engine logs name as served from released (expired) KV blocks.
    pub expired_requests: Vec<String>,
    pub effective_gbps: Option<f64>,
    /// The fabric probe's bandwidth for the pair, GB/s, and where it came from.
    pub capacity_gbps: Option<f64>,
    pub capacity_source: Option<String>,
    /// The stored fabric probe standing for the KV path, and the connector's operation.
    pub path: Option<super::kv_path::KvPath>,
    pub op: super::kv_path::KvOp,
    pub series: Vec<KvSeriesPoint>,
    pub nodes: Vec<NodeBytes>,
    pub carrier: Option<Carrier>,
    /// Rates for the per-request split, by decode target ("" = all).
    #[serde(skip)]
    pub rates: HashMap<String, KvRate>,
}

/// From whole-run windows of the decode (and prefill) targets and every scrape of
/// the decode targets in time order.
pub fn analyze(
    decode: &[(String, EngineWindow)],
    prefill: &[(String, EngineWindow)],
    decode_series: &[(String, Vec<(u64, &Exposition)>)],
) -> KvAnalysis {
    let mut a = KvAnalysis::default();
    let (mut toks, mut xfer) = (0.0, 0.0);
    for (name, w) in decode {
        let Some(b) = &w.nixl_bytes_transferred else {
            continue;
        };
        let t = w.nixl_xfer_time.as_ref().map(|d| &d.value);
        let mut k = KvTarget {
            target: name.clone(),
            transfers: b.value.count,
            bytes: b.value.sum,
            xfer_s: t.map_or(0.0, |h| h.sum),
            failed: w.nixl_failed_transfers.as_ref().map_or(0.0, |d| d.value),
            prompt_tokens: w.prompt_tokens.as_ref().map_or(0.0, |d| d.value),
            xfer_ms_p50: t.and_then(|h| h.quantile(0.5)).map(|v| v * 1e3),
            xfer_ms_p99: t.and_then(|h| h.quantile(0.99)).map(|v| v * 1e3),
            ..Default::default()
        };
        k.gbps = (k.xfer_s > 0.0).then(|| k.bytes / k.xfer_s / 1e9);
        k.mb_per_transfer = (k.transfers > 0.0).then(|| k.bytes / k.transfers / 1e6);
        if k.xfer_s > 0.0 && k.prompt_tokens > 0.0 {
            a.rates.insert(
                name.clone(),
                KvRate {
                    bytes_per_token: k.bytes / k.prompt_tokens,
                    bytes_per_s: k.bytes / k.xfer_s,
                },
            );
        }
        a.transfers += k.transfers;
        a.bytes += k.bytes;
        a.failed += k.failed;
        toks += k.prompt_tokens;
        xfer += k.xfer_s;
        a.targets.push(k);
    }
    for (_, w) in prefill.iter().chain(decode) {
        a.expired += w.nixl_kv_expired_reqs.as_ref().map_or(0.0, |d| d.value);
    }
    if xfer > 0.0 {
        a.effective_gbps = Some(a.bytes / xfer / 1e9);
        if toks > 0.0 {
            a.rates.insert(
                String::new(),
                KvRate {
                    bytes_per_token: a.bytes / toks,
                    bytes_per_s: a.bytes / xfer,
                },
            );
        }
    }
    for (name, scrapes) in decode_series {
        for w in scrapes.windows(2) {
            let (t0, e0) = w[0];
            let (t1, e1) = w[1];
            let Some(d) = hist_delta(e0, e1, "vllm:nixl_bytes_transferred", &[]) else {
                continue;
            };
            let dt = t1.saturating_sub(t0) as f64 / 1e9;
            if dt > 0.0 {
                a.series.push(KvSeriesPoint {
                    target: name.clone(),
                    t_ns: t1,
                    wall_gbps: d.value.sum / dt / 1e9,
                });
            }
        }
    }
    a
}

/// Byte counters of each agent of `telemetry_run` between `from_ns` and `to_ns`
/// (coordinator clock; each agent's samples moved by its offset).
pub fn node_bytes(
    store: &Store,
    telemetry_run: i64,
    from_ns: i64,
    to_ns: i64,
) -> crate::store::Result<Vec<NodeBytes>> {
    let agents = store.run_agents(telemetry_run)?;
    let mut infos = HashMap::new();
    for ag in &agents {
        if let Some(inv) = store.inventory(telemetry_run, ag.agent_id)? {
            infos.insert(ag.agent_id, inv.rdma_devices);
        }
    }
    let offs: HashMap<i64, i64> = agents
        .iter()
        .map(|a| (a.agent_id, a.offset_ns.unwrap_or(0)))
        .collect();
    // agent → (first, last) readings inside the window.
    type Pair = Option<((u64, u64), (u64, u64))>;
    let mut net: BTreeMap<i64, Pair> = BTreeMap::new();
    let mut rdma: BTreeMap<i64, Pair> = BTreeMap::new();
    let mut ndev: BTreeMap<i64, usize> = BTreeMap::new();
    let widen = |slot: &mut Pair, v: (u64, u64)| match slot {
        None => *slot = Some((v, v)),
        Some((_, last)) => *last = v,
    };
    store.for_each_sample(telemetry_run, |s| {
        let t = s.sample.t_ns as i64 - offs.get(&s.agent_id).copied().unwrap_or(0);
        if t < from_ns || t > to_ns {
            return Ok(());
        }
        match &s.sample.data {
            Some(sample::Data::Host(h)) => {
                let v = h
                    .net
                    .iter()
                    .filter(|n| n.name != "lo")
                    .fold((0u64, 0u64), |acc, n| {
                        (
                            acc.0.saturating_add(n.tx_bytes),
                            acc.1.saturating_add(n.rx_bytes),
                        )
                    });
                if !h.net.is_empty() {
                    widen(net.entry(s.agent_id).or_default(), v);
                }
            }
            Some(sample::Data::Rdma(r)) => {
                let Some(info) = infos.get(&s.agent_id) else {
                    return Ok(());
                };
                let mut tot = (0u64, 0u64);
                let mut found = 0;
                for d in &r.devices {
                    if let Some(i) = info.iter().find(|i| i.name == d.device) {
                        if let Some((tx, rx)) = crate::analysis::rates::rdma_bytes(i, d) {
                            tot = (tot.0.saturating_add(tx), tot.1.saturating_add(rx));
                            found += 1;
                        }
                    }
                }
                if found > 0 {
                    ndev.insert(s.agent_id, found);
                    widen(rdma.entry(s.agent_id).or_default(), tot);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    let delta = |p: Option<&Pair>| {
        p.and_then(|x| *x).map_or((0, 0), |(a, b)| {
            (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))
        })
    };
    Ok(agents
        .iter()
        .map(|ag| {
            let n = delta(net.get(&ag.agent_id));
            let r = delta(rdma.get(&ag.agent_id));
            NodeBytes {
                host: ag.hostname.clone(),
                rdma_tx_bytes: r.0,
                rdma_rx_bytes: r.1,
                net_tx_bytes: n.0,
                net_rx_bytes: n.1,
                rdma_devices: ndev.get(&ag.agent_id).copied().unwrap_or(0),
            }
        })
        .collect())
}

/// Which counters carried `kv_bytes`: the larger of the RDMA and kernel-network
/// deltas, if it holds at least half of the KV bytes.
pub fn carrier(nodes: &[NodeBytes], kv_bytes: f64) -> Option<Carrier> {
    if nodes.is_empty() || kv_bytes <= 0.0 {
        return None;
    }
    let rdma: u64 = nodes
        .iter()
        .map(|n| n.rdma_tx_bytes.max(n.rdma_rx_bytes))
        .sum();
    let net: u64 = nodes
        .iter()
        .map(|n| n.net_tx_bytes.max(n.net_rx_bytes))
        .sum();
    let half = kv_bytes * 0.5;
    Some(if rdma as f64 >= half && rdma >= net {
        Carrier::Rdma
    } else if net as f64 >= half {
        Carrier::Tcp
    } else {
        Carrier::NotOnNetwork
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(rdma: u64, net: u64) -> NodeBytes {
        NodeBytes {
            host: "n".into(),
            rdma_tx_bytes: rdma,
            rdma_rx_bytes: rdma / 2,
            net_tx_bytes: net,
            net_rx_bytes: net,
            rdma_devices: 1,
        }
    }

    #[test]
    fn carrier_follows_the_counters_that_moved_the_bytes() {
        assert_eq!(carrier(&[node(900, 10)], 1000.0), Some(Carrier::Rdma));
        assert_eq!(carrier(&[node(10, 700)], 1000.0), Some(Carrier::Tcp));
        assert_eq!(
            carrier(&[node(10, 10)], 1000.0),
            Some(Carrier::NotOnNetwork)
        );
        // Both moved: the larger one carried it.
        assert_eq!(carrier(&[node(800, 900)], 1000.0), Some(Carrier::Tcp));
        assert_eq!(carrier(&[], 1000.0), None);
        assert_eq!(carrier(&[node(1, 1)], 0.0), None);
    }
}
