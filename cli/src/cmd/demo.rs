//! `servescope demo`: an agent in-process on loopback, a 10 s recording, the
//! inventory and a summary of what was recorded.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use servescope_agent::AgentConfig;
use servescope_coordinator::record::RecordConfig;
use servescope_coordinator::summary::summarize;
use servescope_coordinator::{AgentEndpoint, Store};

use super::common::{fmt_bytes, fmt_ns, parse_duration, DbFlag};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// How long to record
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    #[command(flatten)]
    pub db: DbFlag,
    /// sysfs root for the agent (e.g. a captured tree)
    #[arg(long)]
    pub sysfs_root: Option<PathBuf>,
    /// Path of libnvidia-ml.so.1
    #[arg(long)]
    pub nvml_lib: Option<PathBuf>,
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    let _ = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let token = random_token();
    let mut cfg = AgentConfig::loopback(Some(token.clone()));
    if let Some(r) = &a.sysfs_root {
        cfg.sysfs_root = r.clone();
    }
    cfg.nvml_lib = a.nvml_lib.clone();
    let agent = servescope_agent::start(cfg)
        .await
        .context("starting the in-process agent")?;
    let addr = agent.grpc_addr.to_string();
    eprintln!(
        "servescope demo: agent on {addr} (gRPC, bearer token), /metrics on {}",
        agent
            .metrics_addr
            .map(|m| m.to_string())
            .unwrap_or_else(|| "-".into())
    );
    let ep = AgentEndpoint::new(addr.clone(), Some(token));
    let rec = RecordConfig::new(vec![ep.clone()], a.duration, a.db.db.clone());
    let out = super::record::record_with_progress(rec, false).await?;
    // Inventory as the agent reports it now.
    let mut client = servescope_coordinator::connect::connect(&ep).await?;
    let inv = client
        .get_inventory(servescope_proto::v1::GetInventoryRequest {})
        .await?
        .into_inner();
    let off = out.agents.first().and_then(|a| a.offset);
    println!();
    print!("{}", super::nodes::render(&addr, &inv, off.as_ref()));
    agent.shutdown().await;

    let store = Store::open(&a.db.db)?;
    let sums = summarize(&store, out.run_id)?;
    println!(
        "== run {} ({}), stored in {}",
        out.run_id,
        fmt_span(a.duration),
        a.db.db.display()
    );
    for s in &sums {
        let kinds: Vec<String> = s
            .samples_by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!(
            "samples: {} (seq {}..{}, {} missing, {} lost in gaps) over {:.1} s",
            kinds.join(", "),
            s.first_seq,
            s.last_seq,
            s.missing_seqs,
            s.agent.as_ref().map(|x| x.lost).unwrap_or(0),
            s.span_s
        );
        if let Some(ag) = &s.agent {
            if let (Some(o), Some(e)) = (ag.offset_ns, ag.offset_error_ns) {
                println!("clock offset: {} ± {}", fmt_ns(o), fmt_ns(e));
            }
        }
        println!(
            "host: cpu mean {:.1}% | memory used max {} | network rx {} tx {}",
            s.cpu_mean_pct,
            fmt_bytes(s.memory_used_max_bytes as f64),
            fmt_bytes(s.net_rx_bytes as f64),
            fmt_bytes(s.net_tx_bytes as f64)
        );
        if s.gpus.is_empty() {
            let why = inv
                .gpu
                .as_ref()
                .map(|g| g.detail.clone())
                .unwrap_or_default();
            println!("gpu: unavailable ({why})");
        }
        for g in &s.gpus {
            println!(
                "gpu {}: util mean {:.1}% max {}% | memory used max {} | power mean {:.0} W | PCIe tx {} rx {} | {} field errors",
                g.index,
                g.util_mean_pct,
                g.util_max_pct,
                fmt_bytes(g.memory_used_max_bytes as f64),
                g.power_mean_w,
                fmt_bytes(g.pcie_tx_bytes as f64),
                fmt_bytes(g.pcie_rx_bytes as f64),
                g.field_errors
            );
        }
        println!(
            "rdma: {} device(s) sampled | events: {}",
            s.rdma_devices, s.events
        );
        if let Some(c) = s.agent_cpu_pct_of_core {
            println!(
                "agent overhead: {:.2}% of one core, RSS max {}",
                c,
                fmt_bytes(s.agent_rss_max_bytes as f64)
            );
        }
    }
    println!(
        "\nnext: servescope runs --db {0} | servescope export {1} --db {0} --format csv",
        a.db.db.display(),
        out.run_id
    );
    Ok(())
}

fn fmt_span(d: Duration) -> String {
    format!("{:.0} s recording", d.as_secs_f64())
}
