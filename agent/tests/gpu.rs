//! The GPU collector against a real GPU when NVML is present; otherwise it says why
//! it skipped (the no-NVML path is covered by the loopback tests).

use std::sync::{Arc, Mutex};

use servescope_agent::collect::gpu;
use servescope_agent::collect::{CallCosts, Collector};
use servescope_agent::ring::{Ring, RingLimits};
use servescope_proto::v1::sample;

/// GPU 0's NVML and the inventory, or `None` after printing why the GPU paths skip.
fn gpu_or_skip() -> Option<(gpu::GpuInit, Arc<nvml_wrapper::Nvml>)> {
    let g = gpu::init(None);
    match g.nvml.clone().filter(|_| g.availability.available) {
        Some(nvml) => Some((g, nvml)),
        None => {
            println!("skipping: gpu unavailable ({})", g.availability.detail);
            None
        }
    }
}

/// Environment variable `name` parsed, or `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A ring keeping `max_samples` samples.
fn ring(max_samples: usize) -> Arc<Ring> {
    Arc::new(Ring::new(RingLimits {
        horizon_ns: u64::MAX,
        max_samples,
        max_bytes: usize::MAX,
    }))
}

#[test]
fn real_gpu_sampling_when_nvml_is_present() {
    let g = gpu::init(None);
    let Some(nvml) = g.nvml.clone().filter(|_| g.availability.available) else {
        println!("skipping: gpu unavailable ({})", g.availability.detail);
        assert!(!g.availability.detail.is_empty(), "a reason is given");
        return;
    };
    println!("NVML: {} GPU(s), driver {}", g.gpus.len(), g.driver_version);
    let ring = ring(100);
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

/// This thread's CPU time in ns: the first field of `/proc/thread-self/schedstat`
/// (the scheduler's runtime, current to the read), 0 where it cannot be read.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Per-call wall and CPU cost of every NVML call the collectors make, in steady state
/// (after a warm-up call). Printed, not asserted: this is the evidence for where the
/// agent's CPU goes on a GPU machine.
#[test]
fn nvml_call_costs() {
    use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
    let Some((g, nvml)) = gpu_or_skip() else {
        return;
    };
    let iters: u32 = env_or("COST_ITERS", 200);
    let dev = nvml.device_by_index(0).expect("device 0");
    let row = |name: &str, f: &mut dyn FnMut()| {
        f();
        let (w0, c0) = (std::time::Instant::now(), thread_cpu_ns());
        for _ in 0..iters {
            f();
        }
        let cpu = (thread_cpu_ns() - c0) / u64::from(iters);
        let wall = w0.elapsed().as_nanos() as u64 / u64::from(iters);
        println!(
            "{name:<28} wall {:>9.1} µs  cpu {:>9.1} µs",
            wall as f64 / 1e3,
            cpu as f64 / 1e3
        );
    };
    row("device_by_index", &mut || drop(nvml.device_by_index(0)));
    row("memory_info", &mut || drop(dev.memory_info()));
    row("utilization_rates", &mut || drop(dev.utilization_rates()));
    row("clock_info(SM)", &mut || drop(dev.clock_info(Clock::SM)));
    row("clock_info(Memory)", &mut || {
        drop(dev.clock_info(Clock::Memory))
    });
    row("power_usage", &mut || drop(dev.power_usage()));
    row("total_energy_consumption", &mut || {
        drop(dev.total_energy_consumption())
    });
    row("temperature", &mut || {
        drop(dev.temperature(TemperatureSensor::Gpu))
    });
    row("current_throttle_reasons", &mut || {
        drop(dev.current_throttle_reasons())
    });
    row("field_values(pcie tx,rx)", &mut || {
        drop(gpu::fields::read(
            &nvml,
            &dev,
            &[
                (gpu::fields::PCIE_TX_BYTES, 0),
                (gpu::fields::PCIE_RX_BYTES, 0),
            ],
        ))
    });
    row("field_values(pcie tx only)", &mut || {
        drop(gpu::fields::read(
            &nvml,
            &dev,
            &[(gpu::fields::PCIE_TX_BYTES, 0)],
        ))
    });
    row("field_values(energy 83)", &mut || {
        drop(gpu::fields::read(&nvml, &dev, &[(83, 0)]))
    });
    println!("gpm_support: {:?}", dev.gpm_support());
    row("gpm_sample (alloc+get)", &mut || drop(dev.gpm_sample()));
    if let (Ok(a), Ok(b)) = (dev.gpm_sample(), dev.gpm_sample()) {
        use nvml_wrapper::enums::gpm::GpmMetricId;
        row("gpm_metrics_get(pcie)", &mut || {
            drop(nvml_wrapper::gpm::gpm_metrics_get(
                &nvml,
                &a,
                &b,
                &[GpmMetricId::PcieTxPerSec, GpmMetricId::PcieRxPerSec],
            ))
        });
    }
    row("running_compute_processes", &mut || {
        drop(dev.running_compute_processes())
    });
    // SAFETY: the raw handle is only passed back to this NVML.
    let h = unsafe { dev.handle() };
    let mut lister = gpu::procs::ProcessLister::default();
    let mut list = Vec::new();
    row("ProcessLister::read (1 call)", &mut || {
        drop(lister.read(&nvml, h, &mut list))
    });
    row("memory v1 (GetMemoryInfo)", &mut || {
        drop(gpu::memory::read_v1(&nvml, h))
    });
    row("memory v2 (GetMemoryInfo_v2)", &mut || {
        drop(gpu::memory::read_v2(&nvml, h))
    });
    row("running_graphics_processes", &mut || {
        drop(dev.running_graphics_processes())
    });
    let mut c = gpu::GpuCollector::new(
        nvml.clone(),
        &g.gpus,
        Arc::default(),
        ring(10),
        Arc::new(Mutex::new(g.availability.clone())),
    )
    .with_interval(std::time::Duration::from_millis(100));
    let costs = CallCosts::default();
    row("GpuCollector::sample (100 ms)", &mut || {
        drop(c.sample(&costs))
    });
    if let Ok(mut gc) = gpu::gpm::GpmCounter::new(nvml.clone(), &dev) {
        row("GpmCounter::update", &mut || drop(gc.update(&dev)));
    }
}

/// PCIe byte counting two ways while a workload runs: NVML fields 197/198 read every
/// 20 ms (wrap-safe up to ~200 GB/s) and GPM PCIe rates integrated over 100 ms GPM
/// samples. Prints one JSON line per 100 ms with both cumulative counts, so a run
/// beside scripts/gpu_load.py shows which agrees with the bytes copied.
/// PCIE_WATCH_SECS sets the duration (default 2 s).
#[test]
fn pcie_counting_under_load() {
    let Some((_, nvml)) = gpu_or_skip() else {
        return;
    };
    let secs: u64 = env_or("PCIE_WATCH_SECS", 2);
    let dev = nvml.device_by_index(0).expect("device 0");
    let req = [
        (gpu::fields::PCIE_TX_BYTES, 0),
        (gpu::fields::PCIE_RX_BYTES, 0),
    ];
    let mut wt = gpu::fields::WrapCounter::default();
    let mut wr = gpu::fields::WrapCounter::default();
    // The agent's own GPM counter, as the collector uses it.
    let mut gpm = gpu::gpm::GpmCounter::new(nvml.clone(), &dev).ok();
    let (mut gtx, mut grx) = (0u64, 0u64);
    let t0 = std::time::Instant::now();
    let mut i = 0u64;
    while t0.elapsed().as_secs() < secs {
        if let Ok(v) = gpu::fields::read(&nvml, &dev, &req) {
            if let (Ok(a), Ok(b)) = (&v[0], &v[1]) {
                wt.update(*a);
                wr.update(*b);
            }
        }
        i += 1;
        if i.is_multiple_of(5) {
            if let Some(Ok(t)) = gpm.as_mut().map(|c| c.update(&dev)) {
                gtx = t.pcie_tx.unwrap_or(0);
                grx = t.pcie_rx.unwrap_or(0);
            }
            let now = servescope_proto::now_ns();
            println!(
                "{{\"t_ns\":{now},\"fields_tx\":{},\"fields_rx\":{},\"gpm_tx\":{gtx},\"gpm_rx\":{grx}}}",
                wt.total(),
                wr.total()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The every-tick memory reading through the v1 call (used = total − free −
/// reserved) agrees with the v2 call's, and the process list read in one call
/// lists the processes nvml-wrapper's two-call read does; prints the probe's choice.
#[test]
fn memory_v1_derivation_and_one_call_process_list_match_nvml() {
    let Some((g, nvml)) = gpu_or_skip() else {
        return;
    };
    let costs = CallCosts::default();
    for info in &g.gpus {
        let dev = nvml.device_by_index(info.index).expect("device");
        // SAFETY: the raw handle is only passed back to this NVML.
        let h = unsafe { dev.handle() };
        let v2 = gpu::memory::read_v2(&nvml, h).expect("v2 memory");
        let v1 = gpu::memory::read_v1(&nvml, h).expect("v1 memory");
        let d = gpu::memory::derive(v1, v2.reserved);
        // Allocations between the two calls move it; nothing else should.
        assert!(
            d.used.abs_diff(v2.used) <= 256 << 20 && d.free.abs_diff(v2.free) <= 256 << 20,
            "gpu {}: v1-derived {d:?} against v2 {v2:?}",
            info.index
        );
        let calls = gpu::calls::CallNames::new(info.index);
        let m = gpu::memory::MemoryReader::probe(&nvml, h, &calls, &costs);
        println!("{}", m.choice().describe(info.index));
        let mut list = Vec::new();
        gpu::procs::ProcessLister::default()
            .read(&nvml, h, &mut list)
            .expect("process list");
        let mut ours: Vec<u32> = list.iter().map(|p| p.pid).collect();
        let mut theirs: Vec<u32> = dev
            .running_compute_processes()
            .expect("process list")
            .iter()
            .map(|p| p.pid)
            .collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "gpu {}", info.index);
    }
}

/// The fast sampler as the agent runs it (100 ms ticks, GPM every 2 s, memory at
/// its cadence) on GPU 0 listed once and eight times (a p5's eight GPUs' worth of
/// reads, on one GPU): this thread's CPU per tick and as % of one core, at real
/// 100 ms intervals after 2 s of warm-up. Printed, not asserted: run beside a load
/// it is the cost on a busy GPU. TICK_SECS sets the window (default 5 s).
#[test]
fn collector_cpu_for_one_and_eight_gpus() {
    use std::time::{Duration, Instant};
    let Some((g, nvml)) = gpu_or_skip() else {
        return;
    };
    let secs: u32 = env_or("TICK_SECS", 5);
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_else(|e| format!("unknown ({e})"));
    let (w0, c0) = (Instant::now(), thread_cpu_ns());
    for _ in 0..100_000 {
        std::hint::black_box(Instant::now());
    }
    println!(
        "clocksource {}: Instant::now wall {:.0} ns, cpu {:.0} ns",
        source.trim(),
        w0.elapsed().as_nanos() as f64 / 1e5,
        (thread_cpu_ns() - c0) as f64 / 1e5
    );
    let tick = Duration::from_millis(100);
    for n in [1usize, 8] {
        let infos = vec![g.gpus[0].clone(); n];
        let mut c = gpu::GpuCollector::new(
            nvml.clone(),
            &infos,
            Arc::default(),
            ring(100),
            Arc::new(Mutex::new(g.availability.clone())),
        )
        .with_interval(tick)
        .with_counters_interval(tick, Duration::from_secs(2));
        let costs = CallCosts::default();
        let mut run = |ticks: u32| {
            let mut next = Instant::now();
            for _ in 0..ticks {
                drop(c.sample(&costs));
                next += tick;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        };
        run(20);
        drop(costs.take());
        let (w0, c0) = (Instant::now(), thread_cpu_ns());
        run(secs * 10);
        let cpu = (thread_cpu_ns() - c0) as f64;
        let wall = w0.elapsed().as_nanos() as f64;
        println!(
            "{n} GPU(s) of gpu0: {:.1} µs cpu per tick, {:.4} % of one core ({:.4} % per GPU)",
            cpu / f64::from(secs * 10) / 1e3,
            cpu / wall * 100.0,
            cpu / wall * 100.0 / n as f64
        );
        let calls: Vec<String> = costs
            .take()
            .into_iter()
            .filter(|x| x.name.starts_with("gpu0."))
            .map(|x| {
                format!(
                    "{} {}×{:.1}µs",
                    &x.name[5..],
                    x.count,
                    x.mean_ns as f64 / 1e3
                )
            })
            .collect();
        println!("  calls: {}", calls.join(", "));
    }
}

/// Whether an NVML call's cost after a pause is the pause's doing (the thread slept:
/// caches and CPU state cold) or the time's (driver-side state that ages): memory,
/// utilisation and memory again after no pause, a 1 ms and a 100 ms sleep, and a
/// 100 ms busy spin. Printed, not asserted.
#[test]
fn nvml_call_cost_after_a_pause() {
    use std::time::{Duration, Instant};
    let Some((_, nvml)) = gpu_or_skip() else {
        return;
    };
    let dev = nvml.device_by_index(0).expect("device 0");
    // SAFETY: the raw handle is only passed back to this NVML.
    let h = unsafe { dev.handle() };
    let us = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / 1e3
    };
    let pauses: [(&str, Duration, bool); 4] = [
        ("no pause", Duration::ZERO, false),
        ("sleep 1 ms", Duration::from_millis(1), false),
        ("sleep 100 ms", Duration::from_millis(100), false),
        ("spin 100 ms", Duration::from_millis(100), true),
    ];
    for (name, pause, spin) in pauses {
        let (mut m1, mut u, mut m2) = (0.0, 0.0, 0.0);
        let n = 15;
        for _ in 0..n {
            if spin {
                let t = Instant::now();
                while t.elapsed() < pause {
                    std::hint::spin_loop();
                }
            } else if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            m1 += us(&mut || drop(gpu::memory::read_v2(&nvml, h)));
            u += us(&mut || drop(dev.utilization_rates()));
            m2 += us(&mut || drop(gpu::memory::read_v2(&nvml, h)));
        }
        let n = f64::from(n);
        println!(
            "{name:<13} memory {:6.1} µs, then utilization {:5.1} µs, then memory {:5.1} µs",
            m1 / n,
            u / n,
            m2 / n
        );
    }
}
