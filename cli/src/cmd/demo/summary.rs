//! The demo's terminal summary: the findings first (title, evidence, fix), the
//! seeded fault against what was found, then what was measured and where it is.

use std::fmt::Write;
use std::time::Duration;

use servescope_coordinator::analysis::pd::Finding;
use servescope_coordinator::analysis::summary::summarize;
use servescope_coordinator::orchestration::startup_run as live;
use servescope_coordinator::Store;
use servescope_sim::disagg::Truth;

use super::super::common::fmt_kinds;
use super::State;

/// The rule that names the demo's seeded fault.
pub const SEEDED_RULE: &str = "kv_slow_transport";

/// The findings, most severe first.
pub fn findings_text(f: &[Finding]) -> String {
    let mut o = String::new();
    if f.is_empty() {
        o.push_str("== no finding: nothing in this run needs fixing\n");
        return o;
    }
    let _ = writeln!(o, "== {} finding(s)", f.len());
    for x in f {
        let _ = writeln!(o, "\n[{:?}] {} ({})", x.severity, x.title, x.rule);
        for e in &x.evidence {
            let _ = writeln!(o, "  evidence: {e}");
        }
        let _ = writeln!(o, "  fix: {}", x.fix);
    }
    o
}

/// The seeded fault as the simulator played it, and whether its rule named it.
fn seeded_text(s: &State, truth: &[Truth]) -> String {
    if s.args.no_fault {
        return "seeded fault: none (--no-fault)\n".into();
    }
    let n = truth.len();
    let slow = truth.iter().filter(|t| t.slow_kv).count();
    let against = s.probe.as_ref().map_or_else(
        || "the simulated fabric".to_string(),
        |p| {
            format!(
                "the probe's capacity ({} {:.2} GB/s)",
                p.transport, p.capacity_gbps
            )
        },
    );
    let named = s.findings.iter().any(|f| f.rule == SEEDED_RULE);
    format!(
        "seeded fault: KV transfer on a path {:.0}× slower than {against} for {slow} of {n} requests ({:.0} %, by the simulator's ground truth); named by {SEEDED_RULE}: {}\n",
        s.args.slow_kv_factor,
        if n > 0 { slow as f64 / n as f64 * 100.0 } else { 0.0 },
        if named { "yes" } else { "NO" }
    )
}

fn telemetry_text(db: &std::path::Path, run: i64) -> String {
    let Ok(store) = Store::open(db) else {
        return String::new();
    };
    let Ok(sums) = summarize(&store, run) else {
        return String::new();
    };
    sums.iter()
        .map(|a| {
            format!(
                "node telemetry (run {run}): {} samples ({}), {} RDMA device(s), host CPU mean {:.1} %, {} events\n",
                a.samples_by_kind.values().sum::<u64>(),
                fmt_kinds(&a.samples_by_kind),
                a.rdma_devices,
                a.cpu_mean_pct,
                a.events
            )
        })
        .collect()
}

fn startup_text(s: &State) -> String {
    let Some(st) = &s.startup else {
        return String::new();
    };
    let mut o = format!("\n== startup rehearsal (run {})\n", st.run);
    o.push_str(&live::waterfall_text(&st.trial));
    // The watcher follows every engine log it finds on this machine: the rehearsal's
    // is the one named here.
    let (ours, others): (Vec<_>, Vec<_>) = st
        .watched
        .iter()
        .partition(|w| w.source.ends_with(super::stages::STARTUP_LOG));
    if ours.is_empty() {
        let _ = writeln!(
            o,
            "agent log watcher: no line of the rehearsal's log streamed (run {})",
            st.agents_run
        );
    }
    for w in ours {
        let _ = writeln!(
            o,
            "agent log watcher (run {}): {} lines of {}, {} recognised, {} phases",
            st.agents_run,
            w.parse.lines,
            w.source,
            w.parse.recognised_lines,
            w.parse.timeline.phases.len()
        );
    }
    if !others.is_empty() {
        let _ = writeln!(
            o,
            "  (and {} other engine log(s) it found on this machine)",
            others.len()
        );
    }
    o
}

/// Prints the summary on stdout.
pub fn print(s: &State, total: Duration) {
    let Some(pd) = &s.pd else {
        return;
    };
    print!("\n{}", findings_text(&s.findings));
    print!("\n{}", seeded_text(s, &pd.truth));
    println!("\n== P/D sweep (run {})", pd.run_id);
    super::super::load::print_points(&pd.points);
    if let Some(t) = pd.telemetry_run {
        print!("{}", telemetry_text(&s.args.db.db, t));
    }
    println!("\n== fabric");
    match &s.probe {
        Some(p) => {
            for l in &p.lines {
                println!("{l}");
            }
            println!("stored as run {}", p.run);
        }
        None => println!("no transport worked: {}", s.probe_notes.join("; ")),
    }
    print!("{}", startup_text(s));
    println!("\nreport: {}", s.args.report.display());
    let stages: Vec<String> = s
        .timings
        .iter()
        .map(|(n, d)| format!("{n} {:.1} s", d.as_secs_f64()))
        .collect();
    println!("took {:.1} s: {}", total.as_secs_f64(), stages.join(", "));
    println!(
        "next: servescope runs --db {0} | servescope diagnose {1} --db {0}",
        s.args.db.db.display(),
        pd.run_id
    );
}
