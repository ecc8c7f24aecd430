//! Synthetic collectors at a p5 node's rate for the ingest benchmark: 8 GPUs read
//! every 100 ms and 32 EFA devices every second, with values that move like a
//! busy node's (counters rise, gauges wander). They implement the agent's
//! `Collector` trait and run on the agent's own collector threads; only this
//! benchmark uses them.

use servescope_agent::collect::rdma::fixture::{EFA_DEVICE_COUNTERS, EFA_PORT_COUNTERS};
use servescope_agent::collect::{CallCosts, Collector};
use servescope_proto::v1::{
    sample, GpuReading, GpuSample, RdmaDeviceReading, RdmaPortReading, RdmaSample,
};

/// A cheap deterministic generator (xorshift), one per collector.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `gpus` GPUs of 80 GiB, busy.
pub struct SyntheticGpus {
    gpus: u32,
    noise: Noise,
    energy_mj: Vec<u64>,
    pcie: Vec<(u64, u64)>,
    nvlink: Vec<(u64, u64)>,
}

impl SyntheticGpus {
    pub fn new(gpus: u32, seed: u64) -> Self {
        let n = gpus as usize;
        SyntheticGpus {
            gpus,
            noise: Noise(seed | 1),
            energy_mj: vec![0; n],
            pcie: vec![(0, 0); n],
            nvlink: vec![(0, 0); n],
        }
    }
}

impl Collector for SyntheticGpus {
    fn name(&self) -> &'static str {
        "synthetic_gpu"
    }

    fn sample(&mut self, _costs: &CallCosts) -> Option<sample::Data> {
        let mut gpus = Vec::with_capacity(self.gpus as usize);
        for i in 0..self.gpus {
            let k = i as usize;
            let r = &mut self.noise;
            let power_mw = 550_000 + r.below(150_000) as u32;
            self.energy_mj[k] += u64::from(power_mw) / 10;
            self.pcie[k].0 += r.below(2 << 30);
            self.pcie[k].1 += r.below(2 << 30);
            self.nvlink[k].0 += r.below(40 << 30);
            self.nvlink[k].1 += r.below(40 << 30);
            let used = (70 << 30) + r.below(4 << 30);
            gpus.push(GpuReading {
                index: i,
                memory_used_bytes: Some(used),
                memory_reserved_bytes: Some(512 << 20),
                memory_free_bytes: Some((80u64 << 30).saturating_sub(used)),
                util_gpu_pct: Some(80 + r.below(21) as u32),
                util_memory_pct: Some(30 + r.below(50) as u32),
                sm_clock_mhz: Some(1755 + r.below(225) as u32),
                mem_clock_mhz: Some(2619),
                power_mw: Some(power_mw),
                energy_mj: Some(self.energy_mj[k]),
                temperature_c: Some(55 + r.below(20) as u32),
                throttle_reasons: Some(if r.below(50) == 0 { 4 } else { 0 }),
                pcie_tx_bytes: Some(self.pcie[k].0),
                pcie_rx_bytes: Some(self.pcie[k].1),
                nvlink_tx_bytes: Some(self.nvlink[k].0),
                nvlink_rx_bytes: Some(self.nvlink[k].1),
                ecc_corrected_total: Some(0),
                ecc_uncorrected_total: Some(0),
                remapped_rows_correctable: Some(0),
                remapped_rows_uncorrectable: Some(0),
                remapped_rows_pending: Some(false),
                remapped_rows_failure: Some(false),
                ..Default::default()
            });
        }
        Some(sample::Data::Gpu(GpuSample { gpus }))
    }
}

/// `devices` EFA devices of one port each, every counter of the real driver.
pub struct SyntheticRdma {
    counters: Vec<(Vec<u64>, Vec<u64>)>,
    noise: Noise,
}

impl SyntheticRdma {
    pub fn new(devices: u32, seed: u64) -> Self {
        SyntheticRdma {
            counters: (0..devices)
                .map(|_| {
                    (
                        vec![0; EFA_DEVICE_COUNTERS.len()],
                        vec![0; EFA_PORT_COUNTERS.len()],
                    )
                })
                .collect(),
            noise: Noise(seed | 1),
        }
    }
}

impl Collector for SyntheticRdma {
    fn name(&self) -> &'static str {
        "synthetic_rdma"
    }

    fn sample(&mut self, _costs: &CallCosts) -> Option<sample::Data> {
        let r = &mut self.noise;
        let devices = self
            .counters
            .iter_mut()
            .enumerate()
            .map(|(i, (dev, port))| {
                for v in dev.iter_mut().chain(port.iter_mut()) {
                    *v += r.below(1 << 20);
                }
                RdmaDeviceReading {
                    device: format!("rdmap{}s0", 16 + i),
                    values: dev.clone(),
                    ports: vec![RdmaPortReading {
                        port: 1,
                        values: port.clone(),
                        state: "4: ACTIVE".into(),
                        netdev_operstate: "up".into(),
                        netdev_carrier: Some(true),
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect();
        Some(sample::Data::Rdma(RdmaSample { devices }))
    }
}
