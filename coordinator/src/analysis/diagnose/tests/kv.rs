//! KV rules, on a pd run's attribution.

use servescope_loadgen::request::Outcome;

use super::load::{fine, load_run, pt};
use super::*;
use crate::analysis::pd::kv::Carrier;

fn pd_facts(st: &mut Store, outcomes: Vec<Outcome>) -> RunFacts {
    let run = load_run(st, RunKind::Pd, &[pt(2, outcomes)]);
    RunFacts::load(st, run, &AttributeOptions::default()).unwrap()
}

#[test]
fn kv_bytes_over_tcp_are_named() {
    let mut st = Store::in_memory().unwrap();
    let mut f = pd_facts(&mut st, fine(4));
    assert!(diagnose_facts(&f).is_empty());
    if let Some(a) = f.attribution.as_mut() {
        a.kv.bytes = 4e9;
        a.kv.carrier = Some(Carrier::Tcp);
    }
    let rules: Vec<&str> = diagnose_facts(&f).iter().map(|x| x.rule).collect();
    assert_eq!(rules, ["kv_over_tcp"]);
}

#[test]
fn requests_served_from_expired_leases_with_http_200_are_named() {
    let mut st = Store::in_memory().unwrap();
    let mut f = pd_facts(&mut st, fine(4));
    if let Some(a) = f.attribution.as_mut() {
        a.kv.expired_requests = vec!["r1".into(), "r3".into(), "not-ours".into()];
    }
    let found = diagnose_facts(&f);
    assert_eq!(
        found.iter().map(|x| x.rule).collect::<Vec<_>>(),
        ["kv_expired_leases"]
    );
    assert!(
        found[0].evidence[0].contains("2 request(s)") && found[0].evidence[0].contains("r1, r3"),
        "{:?}",
        found[0]
    );
}
