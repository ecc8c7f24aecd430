//! `servescope nodes`: inventory table of agents.

use servescope_coordinator::orchestration::clock;
use servescope_coordinator::orchestration::connect::connect;
use servescope_coordinator::store::Offset;
use servescope_proto::v1::{GetInventoryRequest, Inventory};

use super::common::{fmt_bytes, fmt_ns, or_dash, AgentFlags};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub agents: AgentFlags,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let mut failed = 0;
    for ep in a.agents.endpoints()? {
        let res: anyhow::Result<(Inventory, Offset)> = async {
            let mut c = connect(&ep).await?;
            let inv = c.get_inventory(GetInventoryRequest {}).await?.into_inner();
            let off = clock::measure(&mut c, 16).await?;
            Ok((inv, off))
        }
        .await;
        match res {
            Ok((inv, off)) => {
                if a.json {
                    out.push(serde_json::json!({
                        "address": ep.address,
                        "clock_offset_ns": off.offset_ns,
                        "clock_offset_error_ns": off.error_ns,
                        "rtt_ns": off.rtt_ns,
                        "inventory": inv,
                    }));
                } else {
                    print!("{}", render(&ep.address, &inv, Some(&off)));
                }
            }
            Err(e) => {
                failed += 1;
                if a.json {
                    out.push(serde_json::json!({"address": ep.address, "error": format!("{e:#}")}));
                } else {
                    println!("== {}: unreachable: {e:#}\n", ep.address);
                }
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    if failed > 0 {
        anyhow::bail!("{failed} agent(s) could not be queried");
    }
    Ok(())
}

fn avail(a: &Option<servescope_proto::v1::Availability>) -> String {
    match a {
        Some(a) if a.available => format!("available ({})", a.detail),
        Some(a) => format!("unavailable ({})", a.detail),
        None => "unknown".into(),
    }
}

/// The human-readable inventory of one agent.
pub fn render(address: &str, inv: &Inventory, off: Option<&Offset>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "== {} ({address}) agent {}",
        inv.hostname, inv.agent_version
    );
    if let Some(o) = off {
        let _ = writeln!(
            s,
            "clock offset: {} ± {} (rtt {})",
            fmt_ns(o.offset_ns),
            fmt_ns(o.error_ns),
            fmt_ns(o.rtt_ns)
        );
    }
    if let Some(h) = &inv.host {
        let _ = writeln!(
            s,
            "host: {} | kernel {} | {} CPUs | {} RAM | interfaces: {}",
            h.os,
            h.kernel,
            h.cpu_count,
            fmt_bytes(h.memory_total_bytes as f64),
            h.net_interfaces.join(", ")
        );
    }
    let _ = writeln!(s, "gpu: {}", avail(&inv.gpu));
    if !inv.driver_version.is_empty() {
        let _ = writeln!(
            s,
            "  driver {} | CUDA {} | NVML {}",
            inv.driver_version, inv.cuda_driver_version, inv.nvml_version
        );
    }
    if !inv.gpus.is_empty() {
        let _ = writeln!(
            s,
            "  {:<3} {:<28} {:<14} {:<5} {:>10} {:>6}  uuid",
            "idx", "name", "pci", "numa", "memory", "nvlink"
        );
        for g in &inv.gpus {
            let _ = writeln!(
                s,
                "  {:<3} {:<28} {:<14} {:<5} {:>10} {:>6}  {}",
                g.index,
                g.name,
                g.pci_bus_id,
                or_dash(g.numa_node),
                fmt_bytes(g.memory_total_bytes as f64),
                g.nvlink_links,
                g.uuid
            );
        }
    }
    let _ = writeln!(s, "libfabric: {}", avail(&inv.libfabric));
    let _ = writeln!(s, "ucx: {}", avail(&inv.ucx));
    let _ = writeln!(s, "kernel log: {}", avail(&inv.kernel_log));
    if inv.rdma_devices.is_empty() {
        let _ = writeln!(s, "rdma: no devices");
    } else {
        let _ = writeln!(s, "rdma: {} device(s)", inv.rdma_devices.len());
        let _ = writeln!(
            s,
            "  {:<14} {:<10} {:<14} {:<5} {:<6} {:<10} {:<22} netdev",
            "device", "driver", "pci", "numa", "port", "state", "rate"
        );
        for d in &inv.rdma_devices {
            for p in &d.ports {
                let _ = writeln!(
                    s,
                    "  {:<14} {:<10} {:<14} {:<5} {:<6} {:<10} {:<22} {}",
                    d.name,
                    d.driver,
                    d.pci_address,
                    or_dash(d.numa_node),
                    p.port,
                    p.state,
                    p.rate,
                    p.netdev
                );
            }
        }
    }
    if !inv.topology.is_empty() {
        let _ = writeln!(s, "topology (GPU → RDMA devices):");
        for t in &inv.topology {
            let _ = writeln!(
                s,
                "  GPU {} ({}): same PCIe switch [{}]; same NUMA node: {} device(s)",
                t.gpu_index,
                t.gpu_pci_bus_id,
                t.same_pcie_switch.join(", "),
                t.same_numa_node.len()
            );
        }
    }
    let _ = writeln!(
        s,
        "ring: seq {}..{} | sample interval {} | horizon {}",
        inv.oldest_seq,
        inv.next_seq,
        fmt_ns(inv.sample_interval_ns as i64),
        fmt_ns(inv.buffer_horizon_ns as i64)
    );
    for n in &inv.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s.push('\n');
    s
}
