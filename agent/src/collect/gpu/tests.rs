//! [`super::build::build_reading`] on canned raw reads: counter wrap, repeats of
//! values not read this tick, missing fields and field errors.

use servescope_proto::v1::{FieldError, GpuProcess};

use super::build::{build_reading, GpuState};
use super::fields::FieldValue;
use super::gpm::GpmTotals;
use super::raw::{RawFields, RawGpm, RawMemory, RawReading, RawReads, RawUtilization, ReadError};
use super::slow::{PcieLink, SlowState};

fn failed(why: &str) -> ReadError {
    ReadError::Failed(why.into())
}

fn u32v(v: u64) -> FieldValue {
    FieldValue {
        value: v,
        is_u32: true,
    }
}

fn u64v(v: u64) -> FieldValue {
    FieldValue {
        value: v,
        is_u32: false,
    }
}

/// Every fast read answered; energy read this tick; no GPM, no field values.
fn reads() -> RawReads {
    RawReads {
        memory: Some(Ok(RawMemory {
            used: 10,
            reserved: 2,
            free: 88,
        })),
        utilization: Ok(RawUtilization {
            gpu: 70,
            memory: 30,
        }),
        sm_clock_mhz: Ok(1980),
        mem_clock_mhz: Ok(2619),
        power_mw: Ok(350_000),
        energy_mj: Some(Ok(5_000)),
        temperature_c: Ok(45),
        throttle_reasons: Ok(4),
        gpm: None,
        fields: None,
    }
}

fn raw(reads: RawReads) -> RawReading {
    RawReading {
        index: 3,
        device: Ok(reads),
    }
}

fn pcie(tx: FieldValue, rx: FieldValue) -> RawFields {
    RawFields {
        pcie_tx: Ok(tx),
        pcie_rx: Ok(rx),
        nvlink: None,
    }
}

fn err(field: &str, error: &str) -> FieldError {
    FieldError {
        field: field.into(),
        error: error.into(),
    }
}

#[test]
fn every_field_read() {
    let r = build_reading(raw(reads()), &mut GpuState::default(), None);
    assert_eq!(r.index, 3);
    assert_eq!(r.memory_used_bytes, Some(10));
    assert_eq!(r.memory_reserved_bytes, Some(2));
    assert_eq!(r.memory_free_bytes, Some(88));
    assert_eq!((r.util_gpu_pct, r.util_memory_pct), (Some(70), Some(30)));
    assert_eq!((r.sm_clock_mhz, r.mem_clock_mhz), (Some(1980), Some(2619)));
    assert_eq!(r.power_mw, Some(350_000));
    assert_eq!(r.energy_mj, Some(5_000));
    assert!(!r.energy_stale);
    assert_eq!(r.temperature_c, Some(45));
    assert_eq!(r.throttle_reasons, Some(4));
    assert_eq!(r.pcie_tx_bytes, None);
    assert!(!r.counters_stale);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn lost_device_gives_one_error_and_no_slow_values() {
    let slow = SlowState {
        index: 3,
        ecc_corrected: Some(1),
        ..Default::default()
    };
    let r = build_reading(
        RawReading {
            index: 3,
            device: Err("the GPU has fallen off the bus (GPU lost)".into()),
        },
        &mut GpuState::default(),
        Some(&slow),
    );
    assert_eq!(
        r.errors,
        vec![err("device", "the GPU has fallen off the bus (GPU lost)")]
    );
    assert_eq!(r.memory_used_bytes, None);
    assert_eq!(r.ecc_corrected_total, None);
}

#[test]
fn unsupported_fields_are_absent_and_failed_ones_are_errors() {
    let mut rd = reads();
    rd.memory = Some(Err(ReadError::NotSupported));
    rd.power_mw = Err(failed("Unknown Error"));
    rd.temperature_c = Err(ReadError::NotSupported);
    rd.throttle_reasons = Err(failed("timeout"));
    rd.energy_mj = Some(Err(ReadError::NotSupported));
    let r = build_reading(raw(rd), &mut GpuState::default(), None);
    assert_eq!(r.memory_used_bytes, None);
    assert_eq!(r.power_mw, None);
    assert_eq!(r.temperature_c, None);
    assert_eq!(r.energy_mj, None);
    assert!(!r.energy_stale);
    assert_eq!(r.util_gpu_pct, Some(70));
    assert_eq!(
        r.errors,
        vec![
            err("power", "Unknown Error"),
            err("throttle_reasons", "timeout")
        ]
    );
}

#[test]
fn energy_repeats_marked_stale_until_read_again() {
    let mut st = GpuState::default();
    let r = build_reading(raw(reads()), &mut st, None);
    assert_eq!((r.energy_mj, r.energy_stale), (Some(5_000), false));
    let mut rd = reads();
    rd.energy_mj = None;
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!((r.energy_mj, r.energy_stale), (Some(5_000), true));
    rd.energy_mj = Some(Ok(6_000));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!((r.energy_mj, r.energy_stale), (Some(6_000), false));
    // A failed read forgets the value: nothing to repeat afterwards.
    rd.energy_mj = Some(Err(failed("Unknown Error")));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!(r.energy_mj, None);
    assert_eq!(r.errors, vec![err("energy", "Unknown Error")]);
    rd.energy_mj = None;
    let r = build_reading(raw(rd), &mut st, None);
    assert_eq!((r.energy_mj, r.energy_stale), (None, false));
}

#[test]
fn memory_repeats_marked_stale_when_not_due() {
    let mut st = GpuState::default();
    let mut rd = reads();
    rd.memory = None;
    // Nothing read yet: nothing to repeat.
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!((r.memory_used_bytes, r.memory_stale), (None, false));
    let r = build_reading(raw(reads()), &mut st, None);
    assert_eq!((r.memory_used_bytes, r.memory_stale), (Some(10), false));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!(
        (
            r.memory_used_bytes,
            r.memory_free_bytes,
            r.memory_reserved_bytes
        ),
        (Some(10), Some(88), Some(2))
    );
    assert!(r.memory_stale && !r.energy_stale);
    // A failed read forgets the values.
    rd.memory = Some(Err(failed("GPU is lost")));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!((r.memory_used_bytes, r.memory_stale), (None, false));
    rd.memory = None;
    let r = build_reading(raw(rd), &mut st, None);
    assert_eq!((r.memory_used_bytes, r.memory_stale), (None, false));
}

#[test]
fn gpm_totals_repeat_marked_stale_when_not_due() {
    let t = GpmTotals {
        pcie_tx: Some(100),
        pcie_rx: Some(200),
        nvlink_tx: None,
        nvlink_rx: None,
    };
    let mut st = GpuState::default();
    let mut rd = reads();
    rd.gpm = Some(RawGpm::Read(Ok(t)));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!((r.pcie_tx_bytes, r.pcie_rx_bytes), (Some(100), Some(200)));
    assert_eq!(r.nvlink_tx_bytes, None);
    assert!(!r.counters_stale);
    assert!(st.has_gpm_totals());

    rd.gpm = Some(RawGpm::NotDue);
    for _ in 0..3 {
        let r = build_reading(raw(rd.clone()), &mut st, None);
        assert_eq!((r.pcie_tx_bytes, r.pcie_rx_bytes), (Some(100), Some(200)));
        assert!(r.counters_stale);
    }
    rd.gpm = Some(RawGpm::Read(Ok(GpmTotals {
        pcie_tx: Some(150),
        ..t
    })));
    let r = build_reading(raw(rd), &mut st, None);
    assert_eq!(r.pcie_tx_bytes, Some(150));
    assert!(!r.counters_stale);
}

#[test]
fn gpm_not_due_without_earlier_totals_gives_nothing() {
    let mut rd = reads();
    rd.gpm = Some(RawGpm::NotDue);
    let r = build_reading(raw(rd), &mut GpuState::default(), None);
    assert_eq!(r.pcie_tx_bytes, None);
    assert!(!r.counters_stale);
}

#[test]
fn gpm_failure_is_an_error_and_field_values_stand_in() {
    let mut rd = reads();
    rd.gpm = Some(RawGpm::Read(Err(failed("GPM sample failed"))));
    rd.fields = Some(Ok(pcie(u32v(7), u32v(9))));
    let r = build_reading(raw(rd), &mut GpuState::default(), None);
    assert_eq!(r.errors, vec![err("gpm", "GPM sample failed")]);
    assert_eq!((r.pcie_tx_bytes, r.pcie_rx_bytes), (Some(7), Some(9)));
    assert!(!r.counters_stale);
}

#[test]
fn pcie_field_counters_widen_across_the_u32_wrap() {
    let mut st = GpuState::default();
    let tick = |st: &mut GpuState, tx: u64| {
        let mut rd = reads();
        rd.fields = Some(Ok(pcie(u32v(tx), u32v(0))));
        build_reading(raw(rd), st, None).pcie_tx_bytes
    };
    assert_eq!(tick(&mut st, 4_000_000_000), Some(4_000_000_000));
    assert_eq!(tick(&mut st, 4_294_967_295), Some(4_294_967_295));
    assert_eq!(tick(&mut st, 10), Some(4_294_967_306));
    assert_eq!(tick(&mut st, 20), Some(4_294_967_316));
}

#[test]
fn field_errors_per_counter_and_for_the_whole_call() {
    let mut st = GpuState::default();
    let mut rd = reads();
    rd.fields = Some(Ok(RawFields {
        pcie_tx: Err(failed("Unknown Error")),
        pcie_rx: Err(ReadError::NotSupported),
        nvlink: None,
    }));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!((r.pcie_tx_bytes, r.pcie_rx_bytes), (None, None));
    assert_eq!(r.errors, vec![err("pcie_tx_bytes", "Unknown Error")]);

    // The whole call failing is reported even when NVML says "not supported".
    rd.fields = Some(Err(ReadError::NotSupported));
    let r = build_reading(raw(rd), &mut st, None);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].field, "field_values");
    assert!(!r.errors[0].error.is_empty());
}

#[test]
fn nvlink_kib_summed_over_answering_links_and_carried_between_reads() {
    let mut st = GpuState::default();
    let mut rd = reads();
    let mut f = pcie(u32v(0), u32v(0));
    f.nvlink = Some(vec![
        (Ok(u64v(1)), Ok(u64v(2))),
        (Ok(u64v(3)), Ok(u64v(4))),
        // A link that did not answer is left out of the sum.
        (Err(failed("x")), Ok(u64v(1000))),
    ]);
    rd.fields = Some(Ok(f.clone()));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!(r.nvlink_tx_bytes, Some(4 * 1024));
    assert_eq!(r.nvlink_rx_bytes, Some(6 * 1024));
    assert!(r.errors.is_empty());

    // Not due: the last totals are carried (not marked stale).
    f.nvlink = None;
    rd.fields = Some(Ok(f.clone()));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!(r.nvlink_tx_bytes, Some(4 * 1024));
    assert!(!r.counters_stale);

    // Even when the field-value call fails.
    rd.fields = Some(Err(failed("Unknown Error")));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!(r.nvlink_rx_bytes, Some(6 * 1024));

    // Every link failing keeps the last totals.
    f.nvlink = Some(vec![(Err(failed("x")), Err(failed("y")))]);
    rd.fields = Some(Ok(f.clone()));
    let r = build_reading(raw(rd.clone()), &mut st, None);
    assert_eq!(r.nvlink_tx_bytes, Some(4 * 1024));

    f.nvlink = Some(vec![(Ok(u64v(10)), Ok(u64v(20)))]);
    rd.fields = Some(Ok(f));
    let r = build_reading(raw(rd), &mut st, None);
    assert_eq!(r.nvlink_tx_bytes, Some(10 * 1024));
    assert_eq!(r.nvlink_rx_bytes, Some(20 * 1024));
}

#[test]
fn slow_readings_attached_after_the_fast_errors() {
    // `..Default::default()` although every field is set today: a new slow field
    // (a new catalogue metric) then needs no edit in this test.
    #[allow(clippy::needless_update)]
    let slow = SlowState {
        index: 3,
        t_ns: 42,
        processes: vec![GpuProcess {
            pid: 7,
            name: "python3".into(),
            used_bytes: 1 << 30,
        }],
        ecc_corrected: Some(1),
        ecc_uncorrected: Some(0),
        remapped: Some((2, 0, true, false)),
        pcie: PcieLink {
            gen: Some(1),
            gen_max: Some(5),
            width: Some(16),
            width_max: Some(16),
            replays: Some(3),
        },
        errors: vec![err("processes", "slow")],
        ..Default::default()
    };
    let mut rd = reads();
    rd.power_mw = Err(failed("fast"));
    let r = build_reading(raw(rd), &mut GpuState::default(), Some(&slow));
    assert_eq!(r.processes.len(), 1);
    assert_eq!(r.processes_t_ns, 42);
    assert_eq!(r.ecc_corrected_total, Some(1));
    assert_eq!(r.ecc_uncorrected_total, Some(0));
    assert_eq!(r.remapped_rows_correctable, Some(2));
    assert_eq!(r.remapped_rows_pending, Some(true));
    assert_eq!(r.remapped_rows_failure, Some(false));
    assert_eq!(
        (r.pcie_link_gen, r.pcie_link_gen_max, r.pcie_link_width),
        (Some(1), Some(5), Some(16))
    );
    assert_eq!(r.pcie_replay_count, Some(3));
    assert_eq!(
        r.errors,
        vec![err("power", "fast"), err("processes", "slow")]
    );
}
