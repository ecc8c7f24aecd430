//! Text tables whose columns are as wide as their widest cell, so that long
//! values (service names, instance ids, process names) never shift a column.

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// The header and rows as lines: two spaces between columns, the last column not
/// padded. Rows shorter than the header leave their last cells empty.
pub fn render(header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, c) in cells.enumerate().take(n) {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = widths[i].saturating_sub(c.chars().count());
            let right = align.get(i) == Some(&Align::Right);
            if right {
                s.extend(std::iter::repeat_n(' ', pad));
            }
            s.push_str(c);
            if !right && i + 1 < n {
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&mut header.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_the_widest_cell() {
        let rows = vec![
            vec!["a".to_string(), "1".into(), "x".into()],
            vec![
                "a-very-long-service-name".to_string(),
                "12345".into(),
                "y".into(),
            ],
        ];
        let t = render(
            &["service", "n", "note"],
            &[Align::Left, Align::Right, Align::Left],
            &rows,
        );
        let lines: Vec<&str> = t.lines().collect();
        let at = |l: &str, c: char| l.rfind(c).unwrap();
        // The last column starts at one position on every line.
        assert_eq!(at(lines[1], 'x'), at(lines[2], 'y'));
        assert_eq!(lines[0].find("note"), Some(at(lines[1], 'x')));
        // Right-aligned numbers end at one position.
        assert_eq!(
            lines[1].find('1').unwrap(),
            lines[2].find("12345").unwrap() + 4
        );
    }
}
