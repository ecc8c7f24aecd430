//! `servescope selftest`: the seeded-fault matrix on this machine. Each fault is
//! injected into the loopback lab (the simulator, the p5-like sysfs tree) and run
//! through what `pd run`, `record` and `diagnose` run; the clean baselines must
//! raise nothing. Exits non-zero unless every fault whose rule this build has is
//! named and the baselines are silent.

mod matrix;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use servescope_coordinator::analysis::pd::Finding;
use servescope_coordinator::orchestration::record::RecordConfig;
use servescope_coordinator::Store;

use super::findings::{findings, rule_available};
use super::lab::{Driver, Lab};
use super::pd_lab::{clean_cluster, run_pd};
use matrix::{Injection, Row};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep the runs in this store (default: a scratch store, removed afterwards)
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Only the rows whose fault contains this text
    #[arg(long)]
    pub only: Option<String>,
}

/// The speed of the lab's KV path (GB/s): no fabric probe, so the diagnosis's
/// absolute bound applies.
const KV_GBPS: f64 = 5.0;
/// How long a recording row records, and when its link goes down.
const RECORD_FOR: Duration = Duration::from_secs(4);
const LINK_DOWN_AFTER: Duration = Duration::from_millis(1500);

/// A row's verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The expected rule named it (or a baseline raised nothing).
    Named(String),
    Missed(String),
    /// Not checked: the diagnosis has no such rule (or reads no such run).
    NotAvailable(String),
}

/// Judges a row's findings (`None`: the diagnosis reads nothing of this run kind).
pub fn judge(expected: Option<&str>, got: Option<&[Finding]>) -> Verdict {
    let rules = |f: &[Finding]| f.iter().map(|x| x.rule).collect::<Vec<_>>().join(", ");
    match (expected, got) {
        (Some(r), Some(f)) if !rule_available(r) && !f.is_empty() => {
            Verdict::NotAvailable(format!("rule {r} not available; raised {}", rules(f)))
        }
        (Some(r), _) if !rule_available(r) => {
            Verdict::NotAvailable(format!("rule {r} not available"))
        }
        (_, None) => Verdict::NotAvailable("no diagnosis for this run kind".into()),
        (None, Some([])) => Verdict::Named("nothing raised".into()),
        (None, Some(f)) => Verdict::Missed(format!("raised {}", rules(f))),
        (Some(r), Some(f)) => match f.iter().find(|x| x.rule == r) {
            Some(x) => Verdict::Named(x.title.clone()),
            None if f.is_empty() => Verdict::Missed("nothing raised".into()),
            None => Verdict::Missed(format!("raised {} instead", rules(f))),
        },
    }
}

/// Runs one row into the store at `db`; returns its run and its findings.
async fn run_row(row: &Row, db: &std::path::Path) -> anyhow::Result<(i64, Option<Vec<Finding>>)> {
    let lab = Lab::start(None).await?;
    let run = match &row.injection {
        Injection::Pd { sim, sweep, drive } => {
            let mut c = clean_cluster(KV_GBPS);
            sim.apply(&mut c);
            run_pd(&lab, c, sweep, None, *drive, db)
                .await
                .map(|o| o.run_id)
        }
        Injection::Record { drive } => {
            let d = drive.map(|d| Driver::start(d, lab.target(None, LINK_DOWN_AFTER)));
            let mut rc = RecordConfig::new(vec![lab.ep.clone()], RECORD_FOR, db.to_path_buf());
            rc.label = format!("selftest: {}", row.fault);
            let out = super::record::record_with_progress(rc, true).await;
            if let Some(d) = d {
                d.stop().await?;
            }
            out.map(|o| o.run_id)
        }
    };
    lab.shutdown().await;
    let run = run?;
    let store = Store::open(db).with_context(|| format!("opening {}", db.display()))?;
    Ok((run, findings(&store, run)?))
}

fn verdict_cell(v: &Verdict) -> String {
    match v {
        Verdict::Named(t) => format!("yes: {t}"),
        Verdict::Missed(t) => format!("NO: {t}"),
        Verdict::NotAvailable(t) => format!("n/a: {t}"),
    }
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("servescope-selftest-")
        .tempdir()
        .context("creating a scratch directory")?;
    let db =
        a.db.clone()
            .unwrap_or_else(|| scratch.path().join("selftest.db"));
    let rows: Vec<Row> = matrix::matrix()
        .into_iter()
        .filter(|r| a.only.as_deref().is_none_or(|o| r.fault.contains(o)))
        .collect();
    let started = Instant::now();
    let mut lines = Vec::new();
    let (mut missed, mut unchecked) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        eprintln!(
            "servescope selftest [{}/{}] {}",
            i + 1,
            rows.len(),
            row.fault
        );
        let t = Instant::now();
        let (run, got) = run_row(row, &db)
            .await
            .with_context(|| format!("selftest row {:?}", row.fault))?;
        let v = judge(row.expected, got.as_deref());
        match v {
            Verdict::Missed(_) => missed += 1,
            Verdict::NotAvailable(_) => unchecked += 1,
            Verdict::Named(_) => {}
        }
        lines.push(format!(
            "{:<34} {:<48} {:<26} {} (run {run}, {:.1} s)",
            row.fault,
            row.injection.describe(),
            row.expected.unwrap_or("no finding"),
            verdict_cell(&v),
            t.elapsed().as_secs_f64()
        ));
    }
    println!(
        "{:<34} {:<48} {:<26} found",
        "fault", "injection", "expected"
    );
    for l in &lines {
        println!("{l}");
    }
    println!(
        "\n{} row(s) in {:.1} s: {} named or silent as expected, {missed} missed, {unchecked} not checked",
        rows.len(),
        started.elapsed().as_secs_f64(),
        rows.len() - missed - unchecked
    );
    if missed > 0 {
        anyhow::bail!("selftest: {missed} row(s) not as expected");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_coordinator::analysis::pd::attribution::Severity;

    fn f(rule: &'static str) -> Finding {
        Finding {
            rule,
            severity: Severity::Warning,
            title: format!("title of {rule}"),
            evidence: vec![],
            fix: String::new(),
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            judge(None, Some(&[])),
            Verdict::Named("nothing raised".into())
        );
        assert!(matches!(
            judge(None, Some(&[f("proxy_overhead")])),
            Verdict::Missed(m) if m.contains("proxy_overhead")
        ));
        assert_eq!(
            judge(
                Some("proxy_overhead"),
                Some(&[f("stream_batching"), f("proxy_overhead")])
            ),
            Verdict::Named("title of proxy_overhead".into())
        );
        assert!(matches!(
            judge(Some("proxy_overhead"), Some(&[f("stream_batching")])),
            Verdict::Missed(m) if m.contains("stream_batching instead")
        ));
        assert!(matches!(
            judge(Some("proxy_overhead"), Some(&[])),
            Verdict::Missed(_)
        ));
        assert!(matches!(
            judge(Some("no_such_rule"), Some(&[f("no_such_rule")])),
            Verdict::NotAvailable(m) if m.contains("raised no_such_rule")
        ));
        assert!(matches!(
            judge(Some("no_such_rule"), None),
            Verdict::NotAvailable(m) if m == "rule no_such_rule not available"
        ));
        assert!(matches!(judge(None, None), Verdict::NotAvailable(_)));
    }

    #[test]
    fn every_row_expects_a_known_id_or_nothing() {
        let agreed = ["nic_link_down", "rdma_retransmits_rising", "kv_over_tcp"];
        for r in matrix::matrix() {
            if let Some(e) = r.expected {
                assert!(rule_available(e) || agreed.contains(&e), "{e}");
            }
        }
    }
}
