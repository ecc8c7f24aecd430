//! The agent's own families and per-sample metadata.

use servescope_proto::catalog::{agent as cat, Value};
use servescope_proto::v1::Inventory;

use super::latest::Latest;
use super::writer::{first_of, Family, Lv};

pub(super) fn render_agent(out: &mut String, inv: &Inventory, latest: &Latest<'_>) {
    Family::new(out, &cat::BUILD_INFO)
        .sample(&[("version", Lv::S(&inv.agent_version))], Value::Int(1));

    if let Some(s) = latest.self_stats {
        for e in cat::SELF {
            Family::new(out, &e.def).sample(&[], (e.read)(s));
        }

        let calls = &s.calls;
        let mut f = Family::new(out, &cat::COLLECTOR_CALL_SECONDS);
        for (i, c) in calls.iter().enumerate() {
            if !first_of(calls, i, |a, b| a.name == b.name) {
                continue;
            }
            for &(stat, read) in cat::CALL_STATS {
                f.sample(&[("call", Lv::S(&c.name)), ("stat", Lv::S(stat))], read(c));
            }
        }
        let e = &cat::COLLECTOR_CALLS;
        let mut f = Family::new(out, &e.def);
        for (i, c) in calls.iter().enumerate() {
            if first_of(calls, i, |a, b| a.name == b.name) {
                f.sample(&[("call", Lv::S(&c.name))], (e.read)(c));
            }
        }
    }

    for e in cat::SAMPLE {
        let mut f = Family::new(out, &e.def);
        for s in latest.samples() {
            if let Some(kind) = cat::kind_label(s) {
                f.sample(&[("kind", Lv::S(kind))], (e.read)(s));
            }
        }
    }
}
