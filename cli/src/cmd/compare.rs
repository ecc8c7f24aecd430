//! `servescope compare RUN RUN…`: load runs side by side, point by point, with
//! deltas against the first run and normalised throughput.

use servescope_coordinator::store::PointRow;

use super::common::DbFlag;
use super::table;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run ids; the first is the baseline
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<i64>,
    #[command(flatten)]
    pub db: DbFlag,
}

fn delta(a: f64, b: f64) -> String {
    if a == 0.0 {
        return "-".into();
    }
    format!("{:+.1}%", (b - a) / a * 100.0)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let st = a.db.open_existing()?;
    let mut runs: Vec<(i64, Vec<PointRow>)> = Vec::new();
    for &r in &a.runs {
        st.run(r)?;
        let pts = st.points(r)?;
        if pts.is_empty() {
            anyhow::bail!("run {r} has no load points (is it a load run?)");
        }
        runs.push((r, pts));
    }
    let base = &runs[0].1;
    let mut labels: Vec<String> = Vec::new();
    for (_, pts) in &runs {
        for p in pts {
            if !labels.contains(&p.label) {
                labels.push(p.label.clone());
            }
        }
    }
    println!("{:<6}{}", "run", table::HEADER);
    for label in &labels {
        let b = base.iter().find(|p| &p.label == label && p.trial == 0);
        for (id, pts) in &runs {
            let Some(p) = pts.iter().find(|p| &p.label == label && p.trial == 0) else {
                continue;
            };
            println!("{:<6}{}", id, table::row(label, &p.aggregate));
            if let Some(b) = b.filter(|b| b.id != p.id) {
                let (x, y) = (&b.aggregate, &p.aggregate);
                println!(
                    "      Δ vs run {}: req/s {}, out tok/s {}, TTFT mean {}, TPOT mean {}, E2EL p99 {}",
                    runs[0].0,
                    delta(x.request_throughput, y.request_throughput),
                    delta(x.output_throughput, y.output_throughput),
                    delta(x.ttft_ms.mean, y.ttft_ms.mean),
                    delta(x.tpot_ms.mean, y.tpot_ms.mean),
                    delta(x.e2el_ms.percentile(99.0).unwrap_or(0.0), y.e2el_ms.percentile(99.0).unwrap_or(0.0)),
                );
            }
            for n in table::notes(&p.aggregate) {
                println!("      {n}");
            }
        }
    }
    Ok(())
}
