//! Metric values in a stored sample: what a Prometheus scrape would count as
//! samples (one per numeric field of a reading, one per counter).

use servescope_proto::v1::{sample, GpuReading, Sample};

fn gpu_values(g: &GpuReading) -> u64 {
    let opt = [
        g.memory_used_bytes.is_some(),
        g.memory_reserved_bytes.is_some(),
        g.memory_free_bytes.is_some(),
        g.util_gpu_pct.is_some(),
        g.util_memory_pct.is_some(),
        g.sm_clock_mhz.is_some(),
        g.mem_clock_mhz.is_some(),
        g.power_mw.is_some(),
        g.energy_mj.is_some(),
        g.temperature_c.is_some(),
        g.throttle_reasons.is_some(),
        g.pcie_tx_bytes.is_some(),
        g.pcie_rx_bytes.is_some(),
        g.nvlink_tx_bytes.is_some(),
        g.nvlink_rx_bytes.is_some(),
        g.ecc_corrected_total.is_some(),
        g.ecc_uncorrected_total.is_some(),
        g.remapped_rows_correctable.is_some(),
        g.remapped_rows_uncorrectable.is_some(),
        g.remapped_rows_pending.is_some(),
        g.remapped_rows_failure.is_some(),
    ];
    opt.iter().filter(|x| **x).count() as u64 + g.processes.len() as u64
}

/// Numeric values carried by `s`.
pub fn metric_values(s: &Sample) -> u64 {
    match &s.data {
        Some(sample::Data::Gpu(g)) => g.gpus.iter().map(gpu_values).sum(),
        Some(sample::Data::Rdma(r)) => r
            .devices
            .iter()
            .map(|d| {
                d.values.len() as u64
                    + d.ports
                        .iter()
                        .map(|p| p.values.len() as u64 + u64::from(p.netdev_carrier.is_some()))
                        .sum::<u64>()
            })
            .sum(),
        // CPU total, load 1/5/15, four memory figures, each core, 8 per interface.
        Some(sample::Data::Host(h)) => 8 + h.cpu_per_core_pct.len() as u64 + 8 * h.net.len() as u64,
        Some(sample::Data::SelfStats(_)) => 5,
        Some(sample::Data::Event(_)) => 1,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{SyntheticGpus, SyntheticRdma};
    use servescope_agent::collect::rdma::fixture::{EFA_DEVICE_COUNTERS, EFA_PORT_COUNTERS};
    use servescope_agent::collect::{CallCosts, Collector};

    #[test]
    fn a_p5_tick_counts_every_value() {
        let c = CallCosts::default();
        let gpu = Sample {
            data: SyntheticGpus::new(8, 1).sample(&c),
            ..Default::default()
        };
        assert_eq!(metric_values(&gpu), 8 * 21);
        let rdma = Sample {
            data: SyntheticRdma::new(32, 2).sample(&c),
            ..Default::default()
        };
        let per_dev = (EFA_DEVICE_COUNTERS.len() + EFA_PORT_COUNTERS.len() + 1) as u64;
        assert_eq!(metric_values(&rdma), 32 * per_dev);
    }

    #[test]
    fn counters_rise_between_ticks() {
        let c = CallCosts::default();
        let mut g = SyntheticGpus::new(2, 3);
        let energy = |d: Option<sample::Data>| match d {
            Some(sample::Data::Gpu(s)) => s.gpus[1].energy_mj.unwrap(),
            _ => panic!("not a GPU sample"),
        };
        let a = energy(g.sample(&c));
        let b = energy(g.sample(&c));
        assert!(b > a);
    }
}
