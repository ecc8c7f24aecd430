//! `servescope runs`: list recorded runs.

use servescope_coordinator::Store;

use super::common::DbFlag;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: DbFlag,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !a.db.db.exists() {
        anyhow::bail!(
            "no store at {} (record something first, or pass --db)",
            a.db.db.display()
        );
    }
    let st = Store::open(&a.db.db)?;
    let runs = st.runs()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    println!(
        "{:>5} {:<8} {:<8} {:<25} {:>9} {:>7} {:>9} {:>9}  label",
        "run", "kind", "status", "started (UTC)", "duration", "agents", "samples", "requests"
    );
    for r in runs {
        let dur = r
            .ended_ns
            .map(|e| format!("{:.1}s", (e - r.started_ns) as f64 / 1e9))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:>5} {:<8} {:<8} {:<25} {:>9} {:>7} {:>9} {:>9}  {}",
            r.id,
            r.kind,
            r.status,
            utc(r.started_ns),
            dur,
            r.agents,
            r.samples,
            r.requests,
            r.label
        );
    }
    Ok(())
}

/// Formats ns since the epoch as UTC "YYYY-MM-DD HH:MM:SS".
pub fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_format() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_795_431_331_208_000_000), "2026-11-23 10:55:31");
    }
}
