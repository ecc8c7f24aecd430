//! Where text goes in a chart: legend entries wrapped in rows, point labels placed
//! so that they neither leave the chart nor overlap each other.

use super::svg::text_width;

/// The chart's text size (px).
pub(crate) const FONT: f64 = 12.0;
/// The plot's left margin (room for the y tick labels), px.
pub(crate) const LEFT: f64 = 70.0;
/// The plot's right margin, px.
pub(crate) const RIGHT: f64 = 24.0;

/// Legend entries placed in rows: (row, x offset) per series name, and the row count.
pub(crate) fn legend_layout(names: &[&str], width: f64) -> (Vec<(usize, f64)>, usize) {
    let avail = width - LEFT - RIGHT;
    let (mut row, mut x) = (0usize, 0.0f64);
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let w = 30.0 + text_width(name, FONT) + 18.0;
        if x > 0.0 && x + w > avail {
            row += 1;
            x = 0.0;
        }
        out.push((row, x));
        x += w;
    }
    let rows = if names.is_empty() { 0 } else { row + 1 };
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
        let many: Vec<String> = (0..12)
            .map(|i| format!("run {i} · a fairly long label"))
            .collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let (pos, rows) = legend_layout(&names, 600.0);
        assert!(rows > 1);
        assert!(pos.iter().all(|(_, x)| *x < 600.0 - LEFT - RIGHT));
    }
}
