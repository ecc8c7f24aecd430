//! The low-level text writer: families, label values, escaping.

use std::fmt::Write as _;

use servescope_proto::catalog::rdma::{CounterFamily, CounterHelp, Scope};
use servescope_proto::catalog::{Def, MetricType, Value};

/// A label value.
#[derive(Clone, Copy)]
pub(super) enum Lv<'a> {
    /// Escaped while written.
    S(&'a str),
    U(u64),
    /// A number or the empty string (an unknown NUMA node, for example).
    OptI(Option<i32>),
}

/// Family name and help: fixed, or an RDMA counter family sanitized while written.
#[derive(Clone, Copy)]
enum Head<'a> {
    Fixed(&'static Def),
    Rdma(Scope, &'a str),
}

/// Writes one family: the header goes out with its first sample, so families with no
/// value at all are left out entirely.
pub(super) struct Family<'o, 'n> {
    out: &'o mut String,
    head: Head<'n>,
    started: bool,
}

impl<'o, 'n> Family<'o, 'n> {
    pub(super) fn new(out: &'o mut String, d: &'static Def) -> Self {
        Family {
            out,
            head: Head::Fixed(d),
            started: false,
        }
    }

    pub(super) fn rdma(out: &'o mut String, scope: Scope, raw: &'n str) -> Self {
        Family {
            out,
            head: Head::Rdma(scope, raw),
            started: false,
        }
    }

    fn name(&mut self) {
        match self.head {
            Head::Fixed(d) => self.out.push_str(d.name),
            Head::Rdma(scope, raw) => {
                let _ = write!(self.out, "{}", CounterFamily(scope, raw));
            }
        }
    }

    fn kind(&self) -> MetricType {
        match self.head {
            Head::Fixed(d) => d.kind,
            Head::Rdma(scope, _) => scope.template().kind,
        }
    }

    /// Writes `name{labels} value`; `None` and non-finite values are skipped.
    pub(super) fn sample(&mut self, labels: &[(&str, Lv<'_>)], v: impl Into<Option<Value>>) {
        let Some(v) = v.into().filter(|v| v.is_finite()) else {
            return;
        };
        if !self.started {
            self.started = true;
            self.out.push_str("# HELP ");
            self.name();
            self.out.push(' ');
            let _ = match self.head {
                Head::Fixed(d) => write!(self.out, "{}", d.help),
                Head::Rdma(scope, raw) => write!(self.out, "{}", CounterHelp(scope, raw)),
            };
            self.out.push_str("\n# TYPE ");
            self.name();
            self.out.push(' ');
            self.out.push_str(self.kind().as_str());
            self.out.push('\n');
        }
        self.name();
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, lv)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                match *lv {
                    Lv::S(s) => escape_label_value(self.out, s),
                    Lv::U(u) => {
                        let _ = write!(self.out, "{u}");
                    }
                    Lv::OptI(Some(i)) => {
                        let _ = write!(self.out, "{i}");
                    }
                    Lv::OptI(None) => {}
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        let _ = write!(self.out, "{v}");
        self.out.push('\n');
    }
}

/// Escapes a label value for the text format: backslash, double quote, line feed.
pub(super) fn escape_label_value(out: &mut String, s: &str) {
    if !s.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// True if no element before `i` has the same key (keeps label sets unique; the
/// lists are short: GPUs, processes of a GPU, interfaces, devices).
pub(super) fn first_of<T>(items: &[T], i: usize, same: impl Fn(&T, &T) -> bool) -> bool {
    let x = &items[i];
    !items[..i].iter().any(|y| same(y, x))
}
