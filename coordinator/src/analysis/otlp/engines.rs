//! Which senders of startup spans are one engine. vLLM's processes (API server,
//! engine core, workers) each export with their own resource: without `host.name`
//! each is keyed by its random `service.instance.id`. What ties them together is the
//! trace: vLLM ≥ 0.32 starts every startup span inside the API server's
//! `Overall Loading` span, across processes. Senders of one service whose startup
//! spans share a trace id, and that sent from the same address, are one engine
//! (connected components: A shares a trace with B, B with C).

use std::collections::{BTreeMap, BTreeSet};

use super::startup::Aggs;
use super::ServiceKey;

/// Trace ids kept per sender (startup spans of one process share one or a few).
pub const MAX_TRACES: usize = 16;

/// The startup spans of one sender (one resource: a process, or a host).
#[derive(Debug, Clone, Default)]
pub struct Sender {
    pub aggs: Aggs,
    /// Trace ids of its startup spans (at most [`MAX_TRACES`]).
    pub traces: BTreeSet<String>,
    /// The address it sent from, when known.
    pub peer: Option<String>,
}

impl Sender {
    pub fn add_trace(&mut self, trace: Option<String>) {
        if let Some(t) = trace {
            if self.traces.len() < MAX_TRACES {
                self.traces.insert(t);
            }
        }
    }
}

/// One engine: its senders' keys and their span aggregates merged.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The service, and the clock host: `host.name` when the senders set it, else
    /// the address they sent from, else the first sender's instance id.
    pub key: ServiceKey,
    /// The senders' keys (the `host` of their request spans too).
    pub members: Vec<ServiceKey>,
    pub aggs: Aggs,
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Senders grouped into engines, in key order of their first sender.
pub fn group(senders: &BTreeMap<ServiceKey, Sender>) -> Vec<Engine> {
    let keys: Vec<(&ServiceKey, &Sender)> = senders.iter().collect();
    let mut parent: Vec<usize> = (0..keys.len()).collect();
    type TraceKey<'a> = (&'a str, &'a str, Option<&'a str>);
    let mut by_trace: BTreeMap<TraceKey, usize> = BTreeMap::new();
    for (i, (k, s)) in keys.iter().enumerate() {
        for t in &s.traces {
            let tk = (k.service.as_str(), t.as_str(), s.peer.as_deref());
            match by_trace.get(&tk) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    by_trace.insert(tk, i);
                }
            }
        }
    }
    let mut out: BTreeMap<usize, Engine> = BTreeMap::new();
    for (i, (k, s)) in keys.iter().enumerate() {
        let root = find(&mut parent, i);
        let e = out.entry(root).or_insert_with(|| Engine {
            key: (*k).clone(),
            members: Vec::new(),
            aggs: Aggs::new(),
        });
        e.members.push((*k).clone());
        for (name, agg) in &s.aggs {
            match e.aggs.get_mut(name) {
                Some(a) => a.merge(agg),
                None => {
                    e.aggs.insert(name.clone(), agg.clone());
                }
            }
        }
    }
    out.into_values()
        .map(|mut e| {
            if e.members.len() > 1 {
                // Instance ids are per process: the engine's clock host is the address.
                let peer = senders.get(&e.key).and_then(|s| s.peer.clone());
                e.key.host = peer.or(e.key.host);
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::otlp::startup::SpanAgg;

    fn sender(instance: &str, traces: &[&str], span: &str) -> (ServiceKey, Sender) {
        let mut s = Sender {
            peer: Some("10.0.0.1".into()),
            ..Default::default()
        };
        for t in traces {
            s.add_trace(Some(t.to_string()));
        }
        s.aggs.insert(
            (span.to_string(), Some(format!("{instance} pid"))),
            SpanAgg::new(1, 2, Default::default()),
        );
        let k = ServiceKey {
            service: "unknown_service:python3".into(),
            host: Some(instance.into()),
        };
        (k, s)
    }

    #[test]
    fn otlp_senders_sharing_a_trace_are_one_engine() {
        let senders: BTreeMap<ServiceKey, Sender> = [
            sender("api", &["t1"], "Overall Loading"),
            sender("core", &["t1"], "Prepare model"),
            sender("worker", &["t1", "t9"], "Loading (CPU)"),
            sender("other-worker", &["t9"], "Load weights"),
            sender("second-engine", &["t2"], "Overall Loading"),
            sender("no-trace", &[], "Load model"),
        ]
        .into_iter()
        .collect();
        let engines = group(&senders);
        let sizes: Vec<usize> = engines.iter().map(|e| e.members.len()).collect();
        assert_eq!(sizes, vec![4, 1, 1], "{engines:?}");
        let big = &engines[0];
        assert_eq!(big.key.host.as_deref(), Some("10.0.0.1"));
        assert_eq!(big.aggs.len(), 4);
        // A sender on another address with the same trace id is another engine.
        let mut senders = senders;
        let (k, mut s) = sender("elsewhere", &["t1"], "Load model");
        s.peer = Some("10.0.0.2".into());
        senders.insert(k, s);
        assert_eq!(group(&senders).len(), 4);
    }
}
