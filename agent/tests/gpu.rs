//! The GPU collector against a real GPU when NVML is present; otherwise it says why
//! it skipped (the no-NVML path is covered by the loopback tests).

use std::sync::{Arc, Mutex};

use servescope_agent::collector::{CallCosts, Collector};
use servescope_agent::gpu;
use servescope_agent::ring::{Ring, RingLimits};
use servescope_proto::v1::sample;

#[test]
fn real_gpu_sampling_when_nvml_is_present() {
    let g = gpu::init(None);
    let Some(nvml) = g.nvml.clone().filter(|_| g.availability.available) else {
        println!("skipping: gpu unavailable ({})", g.availability.detail);
        assert!(!g.availability.detail.is_empty(), "a reason is given");
        return;
    };
    println!("NVML: {} GPU(s), driver {}", g.gpus.len(), g.driver_version);
    let ring = Arc::new(Ring::new(RingLimits {
        horizon_ns: u64::MAX,
        max_samples: 100,
        max_bytes: usize::MAX,
    }));
    let status = Arc::new(Mutex::new(g.availability.clone()));
    let mut c = gpu::GpuCollector::new(nvml, &g.gpus, Arc::default(), ring, status);
    let costs = CallCosts::default();
    for _ in 0..2 {
        let Some(sample::Data::Gpu(s)) = c.sample(&costs) else {
            panic!("no GPU sample")
        };
        assert_eq!(s.gpus.len(), g.gpus.len());
        for r in &s.gpus {
            assert!(r.memory_used_bytes.is_some(), "memory read: {:?}", r.errors);
            assert!(r.util_gpu_pct.is_some(), "utilization read: {:?}", r.errors);
            println!("gpu {}: {:?}", r.index, r);
        }
    }
    for cost in costs.take() {
        println!(
            "{}: {} calls, mean {} ns, max {} ns",
            cost.name, cost.count, cost.mean_ns, cost.max_ns
        );
    }
}
