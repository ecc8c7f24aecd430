//! Where text goes in a chart: legend entries wrapped in rows, point labels placed
//! so that they neither leave the chart nor overlap each other.

use super::chart::{Series, FONT, LEFT, RIGHT};
use super::svg::text_width;

/// Legend entries placed in rows: (row, x offset) per series, and the row count.
pub(crate) fn legend_layout(series: &[Series], width: f64) -> (Vec<(usize, f64)>, usize) {
    let avail = width - LEFT - RIGHT;
    let (mut row, mut x) = (0usize, 0.0f64);
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let w = 30.0 + text_width(&s.name, FONT) + 18.0;
        if x > 0.0 && x + w > avail {
            row += 1;
            x = 0.0;
        }
        out.push((row, x));
        x += w;
    }
    let rows = if series.is_empty() { 0 } else { row + 1 };
    (out, rows)
}

/// Where a point label of width `w` goes beside the marker at (`x`, `y`): the first
/// of above-right, below-right, above-left, below-left that stays inside `bounds`
/// (x0, y0, x1, y1) and overlaps no box in `placed` (which it joins).
pub fn place_label(
    x: f64,
    y: f64,
    w: f64,
    bounds: [f64; 4],
    placed: &mut Vec<[f64; 4]>,
) -> Option<(f64, f64, &'static str)> {
    let candidates = [
        (6.0, -6.0, "start"),
        (6.0, 14.0, "start"),
        (-6.0, -6.0, "end"),
        (-6.0, 14.0, "end"),
    ];
    for (dx, dy, anchor) in candidates {
        let (lx, ly) = (x + dx, y + dy);
        let (x0, x1) = if anchor == "start" {
            (lx, lx + w)
        } else {
            (lx - w, lx)
        };
        let b = [x0, ly - 10.0, x1, ly + 2.0];
        let inside =
            b[0] >= bounds[0] && b[2] <= bounds[2] && b[1] >= bounds[1] && b[3] <= bounds[3];
        let free = placed
            .iter()
            .all(|o| b[2] <= o[0] || o[2] <= b[0] || b[3] <= o[1] || o[3] <= b[1]);
        if inside && free {
            placed.push(b);
            return Some((lx, ly, anchor));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_labels_avoid_each_other_and_the_edges() {
        let bounds = [0.0, 0.0, 200.0, 100.0];
        let mut placed = Vec::new();
        assert_eq!(
            place_label(50.0, 50.0, 20.0, bounds, &mut placed),
            Some((56.0, 44.0, "start"))
        );
        // same spot again: goes below
        assert_eq!(
            place_label(50.0, 50.0, 20.0, bounds, &mut placed),
            Some((56.0, 64.0, "start"))
        );
        // near the right edge: to the left
        assert_eq!(
            place_label(195.0, 50.0, 20.0, bounds, &mut placed),
            Some((189.0, 44.0, "end"))
        );
        // every position taken: left out
        place_label(50.0, 50.0, 20.0, bounds, &mut placed);
        place_label(50.0, 50.0, 20.0, bounds, &mut placed);
        assert_eq!(place_label(50.0, 50.0, 20.0, bounds, &mut placed), None);
    }

    #[test]
    fn legend_wraps_within_the_chart() {
        let many: Vec<Series> = (0..12)
            .map(|i| Series {
                name: format!("run {i} · a fairly long label"),
                ..Default::default()
            })
            .collect();
        let (pos, rows) = legend_layout(&many, 600.0);
        assert!(rows > 1);
        assert!(pos.iter().all(|(_, x)| *x < 600.0 - LEFT - RIGHT));
    }
}
