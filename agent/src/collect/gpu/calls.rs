//! Names under which NVML calls are timed: per GPU (`gpu<index>.<call>`) for every
//! call, and across GPUs under the older `gpu.<call>` names for the calls timed
//! that way before, so existing self-telemetry series keep their meaning.

use std::time::{Duration, Instant};

use crate::collect::CallCosts;

/// One NVML call the collectors make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Device,
    Memory,
    Utilization,
    SmClock,
    MemClock,
    Power,
    Energy,
    Temperature,
    ThrottleReasons,
    Gpm,
    Fields,
    Processes,
    EccCorrected,
    EccUncorrected,
    RemappedRows,
    /// The PCIe link's generation and width (current and max) and replay counter.
    PcieLink,
    /// A whole fast tick of one GPU in a burst (its reads; counted per tick).
    BurstTick,
    /// One GPU's share of a fast tick: its reads and its burst observation.
    Tick,
    /// One GPU's share of a slow-sampler pass: device lookup, process list, health.
    SlowTick,
    /// With the v1 memory call chosen: the v2 read for reserved bytes (slow-fields cadence).
    MemoryReserved,
    /// The v1 memory call timed at open (see `memory`).
    MemoryProbeV1,
    /// The v2 memory call timed at open.
    MemoryProbeV2,
}

impl Call {
    const ALL: [Call; 22] = [
        Call::Device,
        Call::Memory,
        Call::Utilization,
        Call::SmClock,
        Call::MemClock,
        Call::Power,
        Call::Energy,
        Call::Temperature,
        Call::ThrottleReasons,
        Call::Gpm,
        Call::Fields,
        Call::Processes,
        Call::EccCorrected,
        Call::EccUncorrected,
        Call::RemappedRows,
        Call::PcieLink,
        Call::BurstTick,
        Call::Tick,
        Call::SlowTick,
        Call::MemoryReserved,
        Call::MemoryProbeV1,
        Call::MemoryProbeV2,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Call::Device => "device",
            Call::Memory => "memory",
            Call::Utilization => "utilization",
            Call::SmClock => "sm_clock",
            Call::MemClock => "mem_clock",
            Call::Power => "power",
            Call::Energy => "energy",
            Call::Temperature => "temperature",
            Call::ThrottleReasons => "throttle_reasons",
            Call::Gpm => "gpm",
            Call::Fields => "fields",
            Call::Processes => "processes",
            Call::EccCorrected => "ecc_corrected",
            Call::EccUncorrected => "ecc_uncorrected",
            Call::RemappedRows => "remapped_rows",
            Call::PcieLink => "pcie_link",
            Call::BurstTick => "burst_tick",
            Call::Tick => "tick",
            Call::SlowTick => "slow_tick",
            Call::MemoryReserved => "memory_reserved",
            Call::MemoryProbeV1 => "memory_probe_v1",
            Call::MemoryProbeV2 => "memory_probe_v2",
        }
    }

    /// The name summed over GPUs, where the call had one before.
    fn total(self) -> Option<&'static str> {
        match self {
            Call::Memory => Some("gpu.memory"),
            Call::Utilization => Some("gpu.utilization"),
            Call::SmClock => Some("gpu.clocks"),
            Call::Power => Some("gpu.power"),
            Call::Energy => Some("gpu.energy"),
            Call::Gpm => Some("gpu.gpm"),
            Call::Fields => Some("gpu.fields"),
            Call::Processes => Some("gpu.processes"),
            Call::EccCorrected => Some("gpu.ecc"),
            Call::RemappedRows => Some("gpu.remapped_rows"),
            Call::BurstTick => Some("gpu.burst_tick"),
            Call::Tick | Call::SlowTick => None,
            Call::Device | Call::MemClock | Call::Temperature | Call::ThrottleReasons => None,
            Call::EccUncorrected | Call::PcieLink => None,
            Call::MemoryReserved | Call::MemoryProbeV1 | Call::MemoryProbeV2 => None,
        }
    }
}

/// One GPU's call names, built once.
#[derive(Debug, Clone)]
pub struct CallNames(Vec<String>);

impl CallNames {
    pub fn new(index: u32) -> Self {
        CallNames(
            Call::ALL
                .iter()
                .map(|c| format!("gpu{index}.{}", c.suffix()))
                .collect(),
        )
    }

    /// The per-GPU name of `call`.
    pub fn name(&self, call: Call) -> &str {
        &self.0[call as usize]
    }

    /// Times `f` as `call` on this GPU.
    pub fn time<T>(&self, costs: &CallCosts, call: Call, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.record(costs, call, t.elapsed());
        out
    }

    /// Records `took` as `call` on this GPU (and in the total, where it has one).
    pub fn record(&self, costs: &CallCosts, call: Call, took: Duration) {
        if let Some(total) = call.total() {
            costs.record(total, took);
        }
        costs.record(self.name(call), took);
    }

    /// Records `ns` nanoseconds as `call` on this GPU.
    pub fn record_ns(&self, costs: &CallCosts, call: Call, ns: u64) {
        self.record(costs, call, Duration::from_nanos(ns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_call_order() {
        let n = CallNames::new(5);
        for c in Call::ALL {
            assert_eq!(n.name(c), format!("gpu5.{}", c.suffix()));
        }
    }

    #[test]
    fn timed_per_gpu_and_in_total() {
        let costs = CallCosts::default();
        for i in 0..2 {
            CallNames::new(i).time(&costs, Call::Memory, || ());
            CallNames::new(i).time(&costs, Call::Temperature, || ());
        }
        let names: Vec<(String, u64)> = costs
            .take()
            .into_iter()
            .map(|c| (c.name, c.count))
            .collect();
        assert_eq!(
            names,
            vec![
                ("gpu.memory".to_string(), 2),
                ("gpu0.memory".to_string(), 1),
                ("gpu0.temperature".to_string(), 1),
                ("gpu1.memory".to_string(), 1),
                ("gpu1.temperature".to_string(), 1),
            ]
        );
    }
}
