//! The seeded-fault matrix as data: each fault, how it is injected, and the rule
//! that must name it (none for the clean baselines).

use std::time::Duration;

use servescope_sim::disagg::ClusterConfig;
use servescope_sim::Faults;

use super::super::lab::Drive;
use super::super::pd_lab::Sweep;

/// A change to the clean simulated deployment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimFault {
    None,
    /// A share of KV transfers on a path this many times slower.
    SlowKv {
        share: f64,
        factor: f64,
    },
    /// A share of KV transfers fail.
    KvFail {
        share: f64,
    },
    /// One KV link, 80 ms per transfer: transfers wait for each other.
    KvSerialised,
    /// Prefill slots on the prefill instance.
    PrefillSlots(usize),
    /// Sequences decoded at once.
    MaxNumSeqs(usize),
    /// Proxy overhead per request.
    ProxyDelay(Duration),
    /// The proxy flushes the stream only this often.
    StreamBatch(Duration),
    /// Every answer is gibberish.
    Gibberish,
}

impl SimFault {
    pub fn apply(self, c: &mut ClusterConfig) {
        let pd = c.engine.pd.get_or_insert_with(Default::default);
        match self {
            SimFault::None => {}
            SimFault::SlowKv { share, factor } => {
                pd.slow_kv_rate = share;
                pd.slow_kv_factor = factor;
            }
            SimFault::KvFail { share } => pd.kv_fail_rate = share,
            SimFault::KvSerialised => {
                pd.kv_links = 1;
                pd.kv_bytes_per_token = (pd.kv_gbps * 1e9 * 0.080 / 100.0) as u64;
            }
            SimFault::PrefillSlots(n) => pd.prefill_slots = n,
            SimFault::MaxNumSeqs(n) => c.engine.max_num_seqs = n,
            SimFault::ProxyDelay(d) => c.proxy_delay = d,
            SimFault::StreamBatch(d) => c.stream_batch = d,
            SimFault::Gibberish => {
                c.engine.faults = Faults {
                    gibberish_rate: 1.0,
                    ..Faults::default()
                }
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            SimFault::None => "sim: no fault".into(),
            SimFault::SlowKv { share, factor } => format!(
                "sim: {:.0} % of KV transfers {factor:.0}× slower",
                share * 100.0
            ),
            SimFault::KvFail { share } => {
                format!("sim: {:.0} % of KV transfers fail", share * 100.0)
            }
            SimFault::KvSerialised => "sim: 1 KV link, 80 ms per transfer".into(),
            SimFault::PrefillSlots(n) => format!("sim: {n} prefill slot(s)"),
            SimFault::MaxNumSeqs(n) => format!("sim: decode --max-num-seqs {n}"),
            SimFault::ProxyDelay(d) => format!("sim: proxy +{} ms", d.as_millis()),
            SimFault::StreamBatch(d) => {
                format!("sim: proxy batches the stream every {} ms", d.as_millis())
            }
            SimFault::Gibberish => "sim: every answer gibberish".into(),
        }
    }
}

/// How a row's fault is injected.
#[derive(Debug, Clone)]
pub enum Injection {
    /// A `pd run` against the simulated deployment, the fixture's counters driven.
    Pd {
        sim: SimFault,
        sweep: Sweep,
        drive: Drive,
    },
    /// A `record` of the agent over the fixture, mutated while it records.
    Record { drive: Option<Drive> },
}

impl Injection {
    pub fn describe(&self) -> String {
        match self {
            Injection::Pd { sim, drive, .. } => match drive {
                Drive::KvOverTcp => format!("{}; fixture: KV bytes on the netdev", sim.describe()),
                _ => sim.describe(),
            },
            Injection::Record { drive: None } => "fixture: untouched".into(),
            Injection::Record { drive: Some(d) } => match d {
                Drive::LinkDown => "fixture: EFA netdev down mid-recording".into(),
                Drive::Retransmits => "fixture: EFA retransmit counters climb".into(),
                Drive::KvOverRdma | Drive::KvOverTcp => "fixture: counters driven".into(),
            },
        }
    }
}

/// One row of the matrix.
#[derive(Debug, Clone)]
pub struct Row {
    pub fault: &'static str,
    pub injection: Injection,
    /// The rule that must name it; `None`: a clean baseline that must raise nothing.
    pub expected: Option<&'static str>,
}

fn sweep(concurrency: &[usize], num_prompts: usize, output_tokens: u32, probe: bool) -> Sweep {
    Sweep {
        concurrency: concurrency.to_vec(),
        num_prompts,
        output_tokens,
        probe,
    }
}

fn pd(fault: &'static str, sim: SimFault, sw: Sweep, expected: Option<&'static str>) -> Row {
    Row {
        fault,
        injection: Injection::Pd {
            sim,
            sweep: sw,
            drive: Drive::KvOverRdma,
        },
        expected,
    }
}

/// The matrix.
pub fn matrix() -> Vec<Row> {
    vec![
        pd(
            "none (clean P/D run)",
            SimFault::None,
            sweep(&[1, 8], 16, 8, true),
            None,
        ),
        Row {
            fault: "none (clean recording)",
            injection: Injection::Record { drive: None },
            expected: None,
        },
        pd(
            "slow KV path",
            SimFault::SlowKv {
                share: 0.5,
                factor: 20.0,
            },
            sweep(&[4], 12, 8, false),
            Some("kv_slow_transport"),
        ),
        pd(
            "failed KV transfers",
            SimFault::KvFail { share: 0.5 },
            sweep(&[4], 12, 8, false),
            Some("kv_transfer_failures"),
        ),
        pd(
            "serialised KV transfers",
            SimFault::KvSerialised,
            sweep(&[1, 8], 16, 8, false),
            Some("kv_serialising"),
        ),
        pd(
            "prefill-bound",
            SimFault::PrefillSlots(1),
            sweep(&[8], 16, 8, false),
            Some("prefill_bound"),
        ),
        pd(
            "decode-bound",
            SimFault::MaxNumSeqs(2),
            sweep(&[8], 16, 24, false),
            Some("decode_bound"),
        ),
        pd(
            "proxy overhead",
            SimFault::ProxyDelay(Duration::from_millis(60)),
            sweep(&[2], 6, 8, false),
            Some("proxy_overhead"),
        ),
        pd(
            "stream batching",
            SimFault::StreamBatch(Duration::from_millis(50)),
            sweep(&[2], 4, 40, false),
            Some("stream_batching"),
        ),
        pd(
            "gibberish after transfer",
            SimFault::Gibberish,
            sweep(&[2], 4, 8, true),
            Some("gibberish_after_transfer"),
        ),
        Row {
            fault: "KV over TCP/IP (forced TCP path)",
            injection: Injection::Pd {
                sim: SimFault::None,
                // Long enough (≈ 3 s) that the counters, sampled every lab tick,
                // see most of the KV bytes inside the run's window: a 0.6 s sweep
                // left the carrier undecided about half the time.
                sweep: sweep(&[2], 24, 16, false),
                drive: Drive::KvOverTcp,
            },
            expected: Some("kv_over_tcp"),
        },
        Row {
            fault: "NIC link down",
            injection: Injection::Record {
                drive: Some(Drive::LinkDown),
            },
            expected: Some("nic_link_down"),
        },
        Row {
            fault: "RDMA retransmits rising",
            injection: Injection::Record {
                drive: Some(Drive::Retransmits),
            },
            expected: Some("rdma_retransmits_rising"),
        },
    ]
}
