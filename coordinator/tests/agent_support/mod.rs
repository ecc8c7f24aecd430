//! An in-process agent for loopback tests: real collectors, a p5-like sysfs fixture
//! tree for RDMA, NVML deliberately pointed at a missing library so the result is
//! the same with or without a GPU, fast sampling.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use servescope_agent::collect::rdma::fixture::{write_p5_tree, P5FixtureOptions};
use servescope_agent::{AgentConfig, AgentHandle};

pub const TOKEN: &str = "test-token-1234";

pub async fn agent(dir: &Path, tune: impl FnOnce(&mut AgentConfig)) -> AgentHandle {
    let sys = dir.join("sys");
    write_p5_tree(&sys, &P5FixtureOptions::default()).expect("fixture tree");
    let mut cfg = AgentConfig::loopback(Some(TOKEN.into()));
    cfg.sysfs_root = sys;
    cfg.nvml_lib = Some(dir.join("no-such-libnvidia-ml.so.1"));
    cfg.kmsg = false;
    cfg.sample_interval = Duration::from_millis(20);
    cfg.host_interval = Duration::from_millis(20);
    cfg.rdma_interval = Duration::from_millis(100);
    tune(&mut cfg);
    servescope_agent::start(cfg).await.expect("agent starts")
}
