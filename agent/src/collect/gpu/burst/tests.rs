//! The burst state machine on canned observation sequences.

use super::*;

const MS: u64 = 1_000_000;
const GIB: u64 = 1 << 30;

fn tick(mem: u64, util: u32) -> Observation<'static> {
    Observation::Tick {
        mem_used: Some(mem),
        util_pct: Some(util),
    }
}

/// A cold start on one GPU at the normal cadence (fast ticks every 100 ms,
/// process list every 1 s): idle, context at 2.05 s, weights, serving.
#[test]
fn a_context_appearing_switches_at_the_next_fast_tick_and_serving_returns() {
    let mut s = BurstState::new(Policy::default());
    let mut changes = Vec::new();
    let mut bursting_at = Vec::new();
    for k in 0..400u64 {
        let t = k * 100 * MS;
        // Context 0.5 GiB at 2.05 s, weights 2–6 s, serving from 6 s.
        let mem = match t {
            t if t < 2_050 * MS => 1 << 20,
            t if t < 6_000 * MS => GIB / 2 + (t - 2_050 * MS) / 100 * (GIB / 100) / MS,
            _ => 5 * GIB,
        };
        let util = if t >= 6_000 * MS { 95 } else { 0 };
        if let Some(c) = s.observe(t, tick(mem, util)) {
            changes.push((t, c));
        }
        if k % 10 == 0 || s.bursting() {
            let list: Vec<(u32, u64)> = if t >= 2_050 * MS {
                vec![(42, mem)]
            } else {
                vec![]
            };
            if let Some(c) = s.observe(t + MS, Observation::Processes(&list)) {
                changes.push((t + MS, c));
            }
        }
        bursting_at.push(s.bursting());
    }
    assert_eq!(
        changes[0],
        (
            2_100 * MS,
            Change::Began(Trigger::DeviceMemory {
                rise_bytes: GIB / 2 + (50 * MS / 100 * (GIB / 100) / MS) - (1 << 20)
            })
        )
    );
    // Serving from 6 s (the last memory step): 3 s of high utilisation with
    // steady memory after it ends the burst.
    assert_eq!(
        changes[1],
        (
            9_100 * MS,
            Change::Ended {
                why: End::Served,
                lasted_ns: 7_000 * MS
            }
        )
    );
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(!bursting_at[20] && bursting_at[21] && bursting_at[90] && !bursting_at[91]);
}

#[test]
fn a_new_pid_or_a_serving_process_starts_it_and_the_process_leaving_ends_it() {
    let mut s = BurstState::new(Policy::default());
    assert_eq!(
        s.observe(0, Observation::Processes(&[(7, GIB)])),
        None,
        "baseline"
    );
    assert_eq!(
        s.observe(S, Observation::Processes(&[(7, GIB), (8, GIB / 2)])),
        Some(Change::Began(Trigger::NewProcess { pid: 8 }))
    );
    assert_eq!(
        s.observe(S + 100 * MS, Observation::Processes(&[(7, GIB), (8, GIB)])),
        None
    );
    assert_eq!(
        s.observe(3 * S, Observation::Processes(&[(7, GIB)])),
        Some(Change::Ended {
            why: End::Gone,
            lasted_ns: 2 * S
        })
    );
    // /proc discovery, well before the process touches the GPU.
    assert_eq!(
        s.observe(10 * S, Observation::Serving { pid: 9 }),
        Some(Change::Began(Trigger::Serving { pid: 9 }))
    );
    assert_eq!(
        s.observe(15 * S, Observation::Processes(&[(7, GIB), (9, GIB)])),
        None
    );
    assert!(s.bursting());
    // Memory steps keep resetting the serving clock.
    for k in 0..100u64 {
        let bytes = GIB + k * (32 << 20);
        let t = 16 * S + k * 100 * MS;
        assert_eq!(
            s.observe(t, Observation::Processes(&[(7, GIB), (9, bytes)])),
            None
        );
        assert_eq!(s.observe(t + MS, tick(10 * GIB, 99)), None);
    }
    assert!(s.bursting());
}

/// In a burst the process list is read while the device's memory moves, and
/// every 500 ms while it holds still; never outside a burst.
#[test]
fn the_process_list_is_due_on_a_memory_move_or_every_500_ms() {
    let mut s = BurstState::new(Policy::default());
    s.observe(0, tick(GIB, 0));
    assert!(!s.list_due(0));
    s.observe(100 * MS, tick(2 * GIB, 0));
    assert!(s.bursting() && s.list_due(100 * MS));
    s.observe(101 * MS, Observation::Processes(&[(7, GIB)]));
    assert!(!s.list_due(101 * MS));
    // Memory still: not before 500 ms after the last list.
    s.observe(200 * MS, tick(2 * GIB, 0));
    assert!(!s.list_due(200 * MS) && !s.list_due(600 * MS) && s.list_due(601 * MS));
    // Memory moved by ≥ 16 MiB: due at once.
    s.observe(300 * MS, tick(2 * GIB + (32 << 20), 0));
    assert!(s.list_due(300 * MS));
    s.observe(301 * MS, Observation::Processes(&[(7, GIB + (32 << 20))]));
    s.observe(400 * MS, tick(2 * GIB + (40 << 20), 0));
    assert!(!s.list_due(400 * MS));
}

#[test]
fn bounded_and_unconfirmed_bursts_return() {
    let mut s = BurstState::new(Policy::default());
    s.observe(0, Observation::Processes(&[]));
    s.observe(S, Observation::Processes(&[(5, GIB)]));
    // Never serves, never leaves: the bound ends it.
    let mut end = None;
    for k in 1..=700u64 {
        let list = [(5, GIB + (k % 2) * GIB)];
        if let Some(c) = s.observe(S + k * S, Observation::Processes(&list)) {
            end = Some((k, c));
            break;
        }
    }
    assert_eq!(
        end,
        Some((
            600,
            Change::Ended {
                why: End::Bound,
                lasted_ns: 600 * S
            }
        ))
    );
    // A trigger meant for another GPU: nothing new here within a minute.
    assert!(matches!(
        s.observe(1000 * S, Observation::Serving { pid: 1 }),
        Some(Change::Began(_))
    ));
    assert_eq!(
        s.observe(1059 * S, Observation::Processes(&[(5, GIB)])),
        None
    );
    assert_eq!(
        s.observe(1060 * S, tick(GIB, 0)),
        Some(Change::Ended {
            why: End::Unconfirmed,
            lasted_ns: 60 * S
        })
    );
}

#[test]
fn two_processes_on_two_gpus_burst_each_on_its_own() {
    let mut g = [
        BurstState::new(Policy::default()),
        BurstState::new(Policy::default()),
    ];
    for s in &mut g {
        s.observe(0, Observation::Processes(&[]));
        s.observe(0, tick(GIB / 100, 0));
    }
    // GPU 0's rank starts at 1 s, GPU 1's at 4 s.
    assert!(g[0].observe(S, tick(GIB, 0)).is_some());
    assert!(g[1].observe(S, tick(GIB / 100, 0)).is_none());
    assert!(g[0].bursting() && !g[1].bursting());
    assert!(g[1]
        .observe(4 * S, Observation::Processes(&[(11, GIB)]))
        .is_some());
    g[0].observe(4 * S, Observation::Processes(&[(10, GIB)]));
    assert!(g[0].bursting() && g[1].bursting());
    // GPU 0's process exits; GPU 1's keeps its burst.
    assert_eq!(
        g[0].observe(9 * S, Observation::Processes(&[])),
        Some(Change::Ended {
            why: End::Gone,
            lasted_ns: 8 * S
        })
    );
    assert_eq!(
        g[1].observe(9 * S, Observation::Processes(&[(11, GIB)])),
        None
    );
    assert!(!g[0].bursting() && g[1].bursting());
}

/// A probe's driver started by the agent: its memory starts a burst at the fast
/// tick, and the first process list, which shows only that process of the agent's
/// own (left out of the list, reported as `OwnAppeared`), ends it.
#[test]
fn memory_of_the_agents_own_probe_ends_the_burst_at_the_first_list() {
    let mut s = BurstState::new(Policy::default());
    assert_eq!(s.observe(0, Observation::Processes(&[])), None);
    assert_eq!(s.observe(100 * MS, tick(1 << 20, 0)), None);
    assert!(matches!(
        s.observe(200 * MS, tick(GIB, 0)),
        Some(Change::Began(Trigger::DeviceMemory { .. }))
    ));
    assert!(s.list_due(200 * MS));
    assert_eq!(s.observe(210 * MS, Observation::Processes(&[])), None);
    assert_eq!(
        s.observe(210 * MS, Observation::OwnAppeared),
        Some(Change::Ended {
            why: End::Own,
            lasted_ns: 10 * MS
        })
    );
    assert!(!s.bursting());
}

/// The same memory rise with an engine's new process in the list beside the
/// agent's own: a cold start, the burst goes on.
#[test]
fn an_engine_starting_beside_the_probe_keeps_its_burst() {
    let mut s = BurstState::new(Policy::default());
    s.observe(0, Observation::Processes(&[]));
    s.observe(100 * MS, tick(1 << 20, 0));
    s.observe(200 * MS, tick(GIB, 0));
    s.observe(210 * MS, Observation::Processes(&[(42, GIB / 2)]));
    assert_eq!(s.observe(210 * MS, Observation::OwnAppeared), None);
    assert!(s.bursting());
}

/// A burst begun by a serving process found in `/proc` (its CUDA context not yet
/// made) is not ended by a probe of the agent's appearing meanwhile; nor does a
/// probe's process start a burst outside one.
#[test]
fn own_processes_neither_end_a_serving_burst_nor_start_one() {
    let mut s = BurstState::new(Policy::default());
    s.observe(0, Observation::Processes(&[]));
    assert_eq!(s.observe(50 * MS, Observation::OwnAppeared), None);
    assert!(!s.bursting());
    assert!(matches!(
        s.observe(100 * MS, Observation::Serving { pid: 7 }),
        Some(Change::Began(Trigger::Serving { pid: 7 }))
    ));
    s.observe(300 * MS, Observation::Processes(&[]));
    assert_eq!(s.observe(300 * MS, Observation::OwnAppeared), None);
    assert!(s.bursting());
}
