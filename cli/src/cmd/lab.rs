//! The loopback lab that `demo` and `selftest` run in: a p5-like sysfs tree in a
//! scratch directory, an agent in this process reading it, and a driver that moves
//! the tree's counters while a run goes on (the KV bytes the simulator transferred
//! onto the EFA or the kernel-network counters, a link taken down, retransmits).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use servescope_agent::collect::rdma::fixture::{self, P5FixtureOptions};
use servescope_agent::{AgentConfig, AgentHandle};
use servescope_coordinator::AgentEndpoint;
use servescope_sim::disagg::TruthBook;

/// Shape of the lab's node: 2 PCIe switch groups with 1 EFA device each.
const GROUPS: usize = 2;
const EFA_PER_GROUP: usize = 1;
/// How often the agent samples RDMA and host counters, and the driver moves them.
pub const TICK: Duration = Duration::from_millis(250);

/// A scratch directory, the fixture under it and the agent reading it.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub sysfs: PathBuf,
    pub agent: AgentHandle,
    pub ep: AgentEndpoint,
    /// The first EFA device and its netdev (what the driver moves).
    pub efa: String,
    pub netdev: String,
}

impl Lab {
    /// Lays out the fixture and starts the agent over it; the agent's startup-log
    /// watcher follows `startup_log` (a path under [`Lab::dir`]) when given.
    pub async fn start(startup_log: Option<&str>) -> anyhow::Result<Lab> {
        let dir = tempfile::Builder::new()
            .prefix("servescope-lab-")
            .tempdir()
            .context("creating a scratch directory")?;
        let sysfs = dir.path().join("sys");
        let opts = P5FixtureOptions {
            groups: GROUPS,
            efa_per_group: EFA_PER_GROUP,
            seed: 1,
        };
        fixture::write_p5_tree(&sysfs, &opts).context("writing the p5-like sysfs tree")?;
        let layout = fixture::p5_layout(&opts).context("the p5-like layout")?;
        let first = layout
            .first()
            .and_then(|g| g.efa.first())
            .context("the fixture has no EFA device")?;
        let token = random_token();
        let mut cfg = AgentConfig::loopback(Some(token.clone()));
        cfg.sysfs_root = sysfs.clone();
        cfg.kmsg = false;
        cfg.metrics_listen = None;
        cfg.rdma_interval = TICK;
        cfg.host_interval = TICK;
        cfg.startup_log_globs = startup_log
            .map(|n| vec![dir.path().join(n).display().to_string()])
            .unwrap_or_default();
        cfg.startup_watch = startup_log.is_some();
        let agent = servescope_agent::start(cfg)
            .await
            .context("starting the in-process agent")?;
        let ep = AgentEndpoint::new(agent.grpc_addr.to_string(), Some(token));
        Ok(Lab {
            efa: first.name.clone(),
            netdev: first.netdev.clone(),
            dir,
            sysfs,
            agent,
            ep,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub async fn shutdown(self) {
        self.agent.shutdown().await;
    }
}

/// A bearer token for the in-process agent.
pub fn random_token() -> String {
    let mut b = [0u8; 16];
    let _ = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What moves the fixture's counters while a run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// The KV bytes the simulator transferred, onto the EFA port's tx/rx bytes.
    KvOverRdma,
    /// The KV bytes onto the netdev's statistics instead (the RDMA counters stay):
    /// the KV cache crossing the kernel's TCP/IP stack.
    KvOverTcp,
    /// The EFA device's netdev goes down a third of the way in.
    LinkDown,
    /// The EFA port's retransmit counters climb every tick.
    Retransmits,
}

/// A running counter driver; [`Driver::stop`] applies what is left and ends it.
pub struct Driver {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Where a driver reads and writes.
#[derive(Clone)]
pub struct DriveTarget {
    pub sysfs: PathBuf,
    pub efa: String,
    pub netdev: String,
    /// The simulator's ground truth (the KV drives read the bytes moved from it).
    pub truth: Option<Arc<TruthBook>>,
    /// For [`Drive::LinkDown`]: when, from the start.
    pub link_down_after: Duration,
}

impl Lab {
    pub fn target(&self, truth: Option<Arc<TruthBook>>, link_down_after: Duration) -> DriveTarget {
        DriveTarget {
            sysfs: self.sysfs.clone(),
            efa: self.efa.clone(),
            netdev: self.netdev.clone(),
            truth,
            link_down_after,
        }
    }
}

/// Retransmit counters bumped per tick by [`Drive::Retransmits`].
const RETRANS: &[(&str, u64)] = &[
    ("retrans_pkts", 40),
    ("retrans_bytes", 40 * 8192),
    ("retrans_timeout_events", 2),
];

impl Driver {
    pub fn start(drive: Drive, t: DriveTarget) -> Driver {
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut applied = 0u64;
            let mut down = false;
            loop {
                let last = tokio::select! {
                    _ = tokio::time::sleep(TICK) => false,
                    _ = rx.changed() => true,
                };
                match drive {
                    Drive::KvOverRdma | Drive::KvOverTcp => {
                        applied += move_kv_bytes(drive, &t, applied)?;
                    }
                    Drive::LinkDown => {
                        if !down && started.elapsed() >= t.link_down_after {
                            fixture::set_netdev_down(&t.sysfs, &t.netdev)
                                .with_context(|| format!("taking {} down", t.netdev))?;
                            down = true;
                        }
                    }
                    Drive::Retransmits => {
                        for (name, d) in RETRANS {
                            fixture::bump_counters(&t.sysfs, &t.efa, Some(1), name, *d)
                                .with_context(|| format!("bumping {}/{name}", t.efa))?;
                        }
                    }
                }
                if last {
                    return Ok(());
                }
            }
        });
        Driver { stop, task }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        self.task.await.context("the counter driver panicked")?
    }
}

/// Adds the KV bytes transferred since `applied` to the counters the drive names;
/// returns how many it added.
fn move_kv_bytes(drive: Drive, t: &DriveTarget, applied: u64) -> anyhow::Result<u64> {
    let Some(truth) = &t.truth else {
        return Ok(0);
    };
    let total: u64 = truth.all().iter().map(|r| r.kv_bytes).sum();
    let d = total.saturating_sub(applied);
    if d == 0 {
        return Ok(0);
    }
    // One node: P sends and D receives through the same device.
    if drive == Drive::KvOverRdma {
        for name in ["tx_bytes", "rx_bytes"] {
            fixture::bump_counters(&t.sysfs, &t.efa, Some(1), name, d)
                .with_context(|| format!("bumping {}/{name}", t.efa))?;
        }
    } else {
        for name in ["tx_bytes", "rx_bytes"] {
            bump_netdev(&t.sysfs, &t.netdev, name, d)?;
        }
    }
    Ok(d)
}

fn bump_netdev(root: &Path, iface: &str, name: &str, d: u64) -> anyhow::Result<()> {
    let p = root
        .join("class/net")
        .join(iface)
        .join("statistics")
        .join(name);
    let v: u64 = std::fs::read_to_string(&p)
        .with_context(|| format!("reading {}", p.display()))?
        .trim()
        .parse()
        .with_context(|| format!("parsing {}", p.display()))?;
    std::fs::write(&p, format!("{}\n", v.saturating_add(d)))
        .with_context(|| format!("writing {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, DriveTarget) {
        let dir = tempfile::tempdir().unwrap();
        let sysfs = dir.path().join("sys");
        let opts = P5FixtureOptions {
            groups: GROUPS,
            efa_per_group: EFA_PER_GROUP,
            seed: 1,
        };
        fixture::write_p5_tree(&sysfs, &opts).unwrap();
        let efa = fixture::p5_layout(&opts).unwrap()[0].efa[0].clone();
        let t = DriveTarget {
            sysfs,
            efa: efa.name,
            netdev: efa.netdev,
            truth: None,
            link_down_after: Duration::ZERO,
        };
        (dir, t)
    }

    fn netdev_stat(t: &DriveTarget, name: &str) -> u64 {
        let p = t
            .sysfs
            .join("class/net")
            .join(&t.netdev)
            .join("statistics")
            .join(name);
        std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
    }

    #[tokio::test]
    async fn kv_bytes_follow_the_truth_onto_the_named_counters() {
        for drive in [Drive::KvOverRdma, Drive::KvOverTcp] {
            let (_dir, mut t) = tree();
            let book = Arc::new(TruthBook::default());
            book.update("a", |r| r.kv_bytes = 1000);
            t.truth = Some(Arc::clone(&book));
            let rdma0 = fixture::read_counter(&t.sysfs, &t.efa, Some(1), "tx_bytes").unwrap();
            let net0 = netdev_stat(&t, "tx_bytes");
            let d = Driver::start(drive, t.clone());
            tokio::time::sleep(TICK * 2).await;
            book.update("b", |r| r.kv_bytes = 500);
            d.stop().await.unwrap();
            let rdma_tx =
                fixture::read_counter(&t.sysfs, &t.efa, Some(1), "tx_bytes").unwrap() - rdma0;
            let net_tx = netdev_stat(&t, "tx_bytes") - net0;
            match drive {
                Drive::KvOverRdma => assert_eq!((rdma_tx, net_tx), (1500, 0)),
                _ => assert_eq!((rdma_tx, net_tx), (0, 1500)),
            }
        }
    }

    #[tokio::test]
    async fn link_goes_down_and_retransmits_climb() {
        let (_dir, t) = tree();
        let before = fixture::read_counter(&t.sysfs, &t.efa, Some(1), "retrans_pkts").unwrap();
        let down = Driver::start(Drive::LinkDown, t.clone());
        let re = Driver::start(Drive::Retransmits, t.clone());
        tokio::time::sleep(TICK * 3).await;
        down.stop().await.unwrap();
        re.stop().await.unwrap();
        let dir = t.sysfs.join("class/net").join(&t.netdev);
        assert_eq!(
            std::fs::read_to_string(dir.join("operstate")).unwrap(),
            "down\n"
        );
        assert!(!dir.join("carrier").exists());
        let after = fixture::read_counter(&t.sysfs, &t.efa, Some(1), "retrans_pkts").unwrap();
        assert!(after >= before + 3 * 40, "{before} → {after}");
    }
}
