//! Keeping the best of repeated runs and printing the comparison tables.

use anyhow::Result;

/// The goal of every comparison: ours / reference at least this.
pub(crate) const GOAL: f64 = 0.95;

pub(crate) type Runs = Option<Result<Vec<f64>>>;

/// Prints one run on stderr and keeps the elementwise best (max) so far in `slot`;
/// the slot holds an error only while every run failed.
pub(crate) fn keep(slot: &mut Runs, label: &str, run: Result<Vec<f64>>) {
    match &run {
        Ok(v) => eprintln!(
            "  {label}: {}",
            v.iter().map(|x| si(*x)).collect::<Vec<_>>().join(" | ")
        ),
        Err(e) => eprintln!("  {label}: {e:#}"),
    }
    *slot = Some(match (slot.take(), run) {
        (Some(Ok(b)), Ok(v)) => Ok(b.iter().zip(&v).map(|(a, b)| a.max(*b)).collect()),
        (Some(Ok(b)), Err(_)) => Ok(b),
        (_, r) => r,
    });
}

pub(crate) fn si(bps: f64) -> String {
    match bps {
        b if b >= 1e9 => format!("{:.3} GB/s", b / 1e9),
        b => format!("{:.1} MB/s", b / 1e6),
    }
}

pub(crate) fn size_label(s: u64) -> String {
    match s >= 1 << 20 {
        true => format!("{} MiB", s >> 20),
        false => format!("{} KiB", s >> 10),
    }
}

/// (size, reference, ours, ours' extra figure) with errors as text.
pub(crate) type Row = (u64, Result<f64, String>, Result<f64, String>, Option<f64>);

pub(crate) fn row(size: u64, r: &Result<Vec<f64>>, o: &Result<Vec<f64>>, i: usize, x: bool) -> Row {
    let cell = |r: &Result<Vec<f64>>, i: usize| match r {
        Ok(v) => v.get(i).copied().ok_or_else(|| "no figure".to_string()),
        Err(e) => Err(format!("{e:#}")),
    };
    let extra = x.then(|| cell(o, 0).ok()).flatten();
    (size, cell(r, 0), cell(o, i), extra)
}

/// Prints one comparison; returns (goals met, comparisons made).
pub(crate) fn table(
    title: &str,
    unit: (&str, f64),
    rows: &[Row],
    extra: Option<&str>,
) -> (u32, u32) {
    println!("\n{title}");
    let x = extra.map_or(String::new(), |e| format!("  {e}"));
    let h = "   size    reference (native)     reference          ours  ours/ref  goal ≥";
    println!("  {h} {GOAL}×{x}");
    let (mut met, mut made) = (0, 0);
    for (size, r, o, x) in rows {
        let (rn, rs) = match r {
            Ok(v) => (format!("{:.1} {}", v / unit.1, unit.0), si(*v)),
            Err(_) => ("-".into(), "-".into()),
        };
        let ours = o.as_ref().map_or("-".into(), |v| si(*v));
        let (ratio, goal) = match (r, o) {
            (Ok(r), Ok(o)) => {
                made += 1;
                met += u32::from(o / r >= GOAL);
                let g = if o / r >= GOAL { "met" } else { "NOT met" };
                (format!("{:.3}", o / r), g)
            }
            _ => ("-".into(), "-"),
        };
        let x = x.map_or(String::new(), |v| format!("  {:>12}", si(v)));
        let sz = size_label(*size);
        println!("  {sz:>7}  {rn:>20}  {rs:>12}  {ours:>12}  {ratio:>8}  {goal:<7}{x}");
        for (who, c) in [("reference", r), ("ours", o)] {
            if let Err(e) = c {
                println!("           {who}: {e}");
            }
        }
    }
    (met, made)
}
