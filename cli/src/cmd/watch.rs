//! `servescope watch`: live terminal view, refreshed every second.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use servescope_coordinator::analysis::rates::{rdma_bytes, Rates};
use servescope_coordinator::orchestration::connect::connect;
use servescope_proto::v1::{
    sample, telemetry_message, GetInventoryRequest, GpuSample, HostSample, Inventory, RdmaSample,
    SampleKind, StreamTelemetryRequest, TelemetryFilter,
};
use tokio::sync::mpsc;

use super::common::{fmt_bytes, or_dash, parse_duration, AgentFlags};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub agents: AgentFlags,
    /// Stop after this long (default: until Ctrl-C)
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

#[derive(Default)]
struct View {
    inv: Option<Inventory>,
    status: String,
    gpu: Option<(u64, GpuSample)>,
    host: Option<HostSample>,
    rdma: Option<(u64, RdmaSample)>,
    rates: Rates,
    shown: HashMap<String, f64>,
}

enum Msg {
    Inv(usize, Box<Inventory>),
    Sample(usize, servescope_proto::v1::Sample),
    Status(usize, String),
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let eps = a.agents.endpoints()?;
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    for (i, ep) in eps.iter().cloned().enumerate() {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let r: anyhow::Result<()> = async {
                    let mut c = connect(&ep).await?;
                    let inv = c.get_inventory(GetInventoryRequest {}).await?.into_inner();
                    let _ = tx.send(Msg::Inv(i, Box::new(inv))).await;
                    let kinds = [SampleKind::Gpu, SampleKind::Host, SampleKind::Rdma]
                        .map(|k| k as i32)
                        .to_vec();
                    let mut s = c
                        .stream_telemetry(StreamTelemetryRequest {
                            // The view refreshes each second.
                            max_delay_ms: 250,
                            from_seq: 0,
                            filter: Some(TelemetryFilter { kinds }),
                            live_only: true,
                        })
                        .await?
                        .into_inner();
                    while let Some(m) = s.message().await? {
                        if let Some(telemetry_message::Body::Sample(x)) = m.body {
                            if tx.send(Msg::Sample(i, x)).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Ok(())
                }
                .await;
                let why = match r {
                    Ok(()) => "stream ended".to_string(),
                    Err(e) => format!("{e:#}"),
                };
                if tx
                    .send(Msg::Status(i, format!("reconnecting: {why}")))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    drop(tx);
    let mut views: Vec<View> = eps.iter().map(|_| View::new()).collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let end = a.duration.map(|d| tokio::time::Instant::now() + d);
    let tty = std::io::stdout().is_terminal();
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(Msg::Inv(i, inv)) => { views[i].inv = Some(*inv); views[i].status = "live".into(); }
                Some(Msg::Status(i, s)) => views[i].status = s,
                Some(Msg::Sample(i, s)) => views[i].add(s),
                None => break,
            },
            _ = tick.tick() => {
                let mut out = String::new();
                if tty { out.push_str("\x1b[2J\x1b[H"); }
                for (ep, v) in eps.iter().zip(&views) { out.push_str(&v.render(&ep.address)); }
                print!("{out}");
                let _ = std::io::stdout().flush();
                if end.is_some_and(|e| tokio::time::Instant::now() >= e) { break; }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}

impl View {
    fn new() -> Self {
        View {
            rates: Rates::new(1_000_000_000),
            ..Default::default()
        }
    }

    fn add(&mut self, s: servescope_proto::v1::Sample) {
        let t = s.t_ns;
        match s.data {
            Some(sample::Data::Gpu(g)) => {
                for r in &g.gpus {
                    for (k, v) in [
                        ("pcie.tx", r.pcie_tx_bytes),
                        ("pcie.rx", r.pcie_rx_bytes),
                        ("nvlink.tx", r.nvlink_tx_bytes),
                        ("nvlink.rx", r.nvlink_rx_bytes),
                    ] {
                        if let Some(v) = v {
                            let key = format!("gpu{}.{k}", r.index);
                            if let Some(rate) = self.rates.push(&key, t, v) {
                                self.shown.insert(key, rate);
                            }
                        }
                    }
                }
                self.gpu = Some((t, g));
            }
            Some(sample::Data::Host(h)) => self.host = Some(h),
            Some(sample::Data::Rdma(r)) => {
                if let Some(inv) = &self.inv {
                    for d in &r.devices {
                        let Some(info) = inv.rdma_devices.iter().find(|x| x.name == d.device)
                        else {
                            continue;
                        };
                        if let Some((tx, rx)) = rdma_bytes(info, d) {
                            for (k, v) in [("tx", tx), ("rx", rx)] {
                                let key = format!("{}.{k}", d.device);
                                if let Some(rate) = self.rates.push(&key, t, v) {
                                    self.shown.insert(key, rate);
                                }
                            }
                        }
                    }
                }
                self.rdma = Some((t, r));
            }
            _ => {}
        }
    }

    fn rate(&self, key: &str) -> String {
        or_dash(self.shown.get(key).map(|r| format!("{}/s", fmt_bytes(*r))))
    }

    fn render(&self, address: &str) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let host = self
            .inv
            .as_ref()
            .map(|i| i.hostname.as_str())
            .unwrap_or("?");
        let _ = writeln!(s, "== {host} ({address}) [{}]", self.status);
        if let Some(h) = &self.host {
            let _ = writeln!(
                s,
                "cpu {:5.1}% | mem {} / {} | load {:.2}",
                h.cpu_total_pct,
                fmt_bytes(h.memory_used_bytes as f64),
                fmt_bytes(h.memory_total_bytes as f64),
                h.load1
            );
        }
        match (&self.gpu, self.inv.as_ref().and_then(|i| i.gpu.as_ref())) {
            (Some((_, g)), _) => {
                // NVLink columns only where a GPU has links (the agent sends their
                // byte counters, summed over the active links).
                let nvlink = g.gpus.iter().any(|r| r.nvlink_tx_bytes.is_some());
                let _ = write!(
                    s,
                    "{:<4} {:>5} {:>21} {:>8} {:>14} {:>14}",
                    "gpu", "util", "memory", "power", "pcie tx", "pcie rx"
                );
                if nvlink {
                    let _ = write!(s, " {:>14} {:>14}", "nvlink tx", "nvlink rx");
                }
                let _ = writeln!(s, " procs");
                for r in &g.gpus {
                    let _ = write!(
                        s,
                        "{:<4} {:>4}% {:>10} / {:>8} {:>7}W {:>14} {:>14}",
                        r.index,
                        or_dash(r.util_gpu_pct),
                        or_dash(r.memory_used_bytes.map(|v| fmt_bytes(v as f64))),
                        or_dash(
                            r.memory_free_bytes
                                .zip(r.memory_used_bytes)
                                .map(|(f, u)| fmt_bytes((f + u) as f64))
                        ),
                        or_dash(r.power_mw.map(|v| format!("{:.0}", v as f64 / 1000.0))),
                        self.rate(&format!("gpu{}.pcie.tx", r.index)),
                        self.rate(&format!("gpu{}.pcie.rx", r.index)),
                    );
                    if nvlink {
                        let _ = write!(
                            s,
                            " {:>14} {:>14}",
                            self.rate(&format!("gpu{}.nvlink.tx", r.index)),
                            self.rate(&format!("gpu{}.nvlink.rx", r.index)),
                        );
                    }
                    let _ = writeln!(s, " {}", r.processes.len());
                }
            }
            (None, Some(a)) if !a.available => {
                let _ = writeln!(s, "gpu: unavailable ({})", a.detail);
            }
            _ => {}
        }
        if let Some((_, r)) = &self.rdma {
            let _ = writeln!(
                s,
                "{:<16} {:>14} {:>14} {:>8}",
                "rdma", "tx", "rx", "netdev"
            );
            for d in &r.devices {
                let up = d
                    .ports
                    .first()
                    .map(|p| {
                        if p.netdev_operstate.is_empty() {
                            "-".to_string()
                        } else {
                            p.netdev_operstate.clone()
                        }
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "{:<16} {:>14} {:>14} {:>8}",
                    d.device,
                    self.rate(&format!("{}.tx", d.device)),
                    self.rate(&format!("{}.rx", d.device)),
                    up
                );
            }
        }
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::{GpuReading, Sample};

    fn gpu_sample(t_s: u64, nvlink: Option<(u64, u64)>) -> Sample {
        Sample {
            t_ns: t_s * 1_000_000_000,
            data: Some(sample::Data::Gpu(GpuSample {
                gpus: vec![GpuReading {
                    index: 0,
                    pcie_tx_bytes: Some(t_s * 1_000_000),
                    pcie_rx_bytes: Some(0),
                    nvlink_tx_bytes: nvlink.map(|n| n.0),
                    nvlink_rx_bytes: nvlink.map(|n| n.1),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        }
    }

    #[test]
    fn nvlink_rates_are_shown_beside_pcie() {
        let mut v = View::new();
        // 40 GB/s transmitted, 2 GB/s received over NVLink for two seconds.
        for t in 0..=2 {
            v.add(gpu_sample(t, Some((t * 40_000_000_000, t * 2_000_000_000))));
        }
        let out = v.render("127.0.0.1:1");
        let head = out.lines().find(|l| l.starts_with("gpu")).unwrap();
        assert!(
            head.contains("nvlink tx") && head.contains("nvlink rx"),
            "{out}"
        );
        let row = out.lines().find(|l| l.starts_with("0 ")).unwrap();
        assert!(
            row.contains(&format!("{}/s", fmt_bytes(40e9)))
                && row.contains(&format!("{}/s", fmt_bytes(2e9))),
            "{out}"
        );
    }

    #[test]
    fn no_nvlink_columns_without_links() {
        let mut v = View::new();
        for t in 0..=2 {
            v.add(gpu_sample(t, None));
        }
        let out = v.render("127.0.0.1:1");
        assert!(!out.contains("nvlink"), "{out}");
        assert!(out.contains(&format!("{}/s", fmt_bytes(1e6))), "{out}");
    }
}
