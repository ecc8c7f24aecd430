//! Every ordered pair of agents probed in turn; the N×N bandwidth matrix, its median
//! and the pairs below 80 % of it.

use crate::store::ProbeOutcome;

/// A pair below this fraction of the median is an outlier.
pub const OUTLIER_FRACTION: f64 = 0.8;

/// Bandwidth (bytes/s) of one probe at its largest measured size, tag op preferred.
pub fn headline_bps(o: &ProbeOutcome) -> Option<f64> {
    let max = o.results.iter().map(|r| r.size).max()?;
    let at: Vec<_> = o.results.iter().filter(|r| r.size == max).collect();
    at.iter()
        .find(|r| r.op == "tag")
        .or_else(|| at.first())
        .map(|r| r.bandwidth_bps)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub agents: Vec<String>,
    /// cells[from][to]; None on the diagonal and where the probe failed.
    pub cells: Vec<Vec<Option<f64>>>,
    pub median: Option<f64>,
    /// (from, to, bps, fraction of median).
    pub outliers: Vec<(usize, usize, f64, f64)>,
}

pub fn build(agents: &[String], outcomes: &[ProbeOutcome]) -> Matrix {
    let n = agents.len();
    let mut cells = vec![vec![None; n]; n];
    for o in outcomes {
        let (Some(i), Some(j)) = (
            agents.iter().position(|a| *a == o.from),
            agents.iter().position(|a| *a == o.to),
        ) else {
            continue;
        };
        if o.error.is_none() {
            cells[i][j] = headline_bps(o);
        }
    }
    let mut vals: Vec<f64> = cells.iter().flatten().flatten().copied().collect();
    vals.sort_by(f64::total_cmp);
    let median = match vals.len() {
        0 => None,
        l if l % 2 == 1 => Some(vals[l / 2]),
        l => Some((vals[l / 2 - 1] + vals[l / 2]) / 2.0),
    };
    let mut outliers = Vec::new();
    if let Some(m) = median.filter(|m| *m > 0.0) {
        for (i, row) in cells.iter().enumerate() {
            for (j, c) in row.iter().enumerate() {
                if let Some(v) = c {
                    if *v < OUTLIER_FRACTION * m {
                        outliers.push((i, j, *v, v / m));
                    }
                }
            }
        }
    }
    Matrix {
        agents: agents.to_vec(),
        cells,
        median,
        outliers,
    }
}
