//! NVML-inferred phases into a waterfall where the logs have no line for them: a
//! phase the logs (or OTLP, or the client) already have keeps its source; an NVML
//! phase fills in only kinds that are missing and only where it does not cover a
//! phase of another source. Each added phase keeps [`Source::Nvml`], its
//! confidence, evidence and boundary uncertainties.

use super::phase::{Phase, PhaseKind, Source, Timeline};

/// Adds the NVML phases `t` lacks (shifted onto `t`'s clock); returns their kinds.
/// A weight load with no model-load phase also stands in for the model load, so a
/// log-less waterfall accounts for it (a download before the CUDA context is
/// invisible to NVML). The caller fills the gaps afterwards.
pub fn add_nvml(t: &mut Timeline, nvml: &Timeline) -> Vec<PhaseKind> {
    let shift = nvml.clock_offset_ns.saturating_sub(t.clock_offset_ns);
    let mut added = Vec::new();
    for p in &nvml.phases {
        if p.kind == PhaseKind::Unattributed || t.get(p.kind).is_some() {
            continue;
        }
        let mut p = p.clone();
        p.start_ns = p.start_ns.map(|v| v.saturating_add(shift));
        p.end_ns = p.end_ns.map(|v| v.saturating_add(shift));
        if p.kind.in_waterfall() && covers_another(t, &p) {
            continue;
        }
        if p.kind == PhaseKind::WeightLoad && t.get(PhaseKind::ModelLoad).is_none() {
            let mut m = p.clone();
            m.kind = PhaseKind::ModelLoad;
            m.attrs.insert(
                "evidence".into(),
                "NVML weight transfer (a download before the CUDA context is not visible)".into(),
            );
            if !covers_another(t, &m) {
                t.phases.push(m);
                added.push(PhaseKind::ModelLoad);
            }
        }
        t.phases.push(p.clone());
        added.push(p.kind);
    }
    t.sort();
    added
}

/// Whether `p` overlaps more than half of itself with a waterfall phase already
/// in `t` (the logs explain that time another way).
fn covers_another(t: &Timeline, p: &Phase) -> bool {
    let (Some(s), Some(e)) = (p.start_ns, p.end_ns) else {
        return false;
    };
    let len = e.saturating_sub(s).max(1);
    t.phases
        .iter()
        .filter(|q| q.kind.in_waterfall() && q.kind != PhaseKind::Unattributed)
        .filter(|q| q.source != Source::Nvml)
        .filter_map(|q| Some((q.start_ns?, q.end_ns?)))
        .any(|(qs, qe)| {
            let overlap = e.min(qe).saturating_sub(s.max(qs));
            overlap > len / 2
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn ph(kind: PhaseKind, src: Source, s: i64, e: i64) -> Phase {
        Phase::new(kind, src, 0.5).span(s * S, e * S)
    }

    #[test]
    fn nvml_fills_only_what_the_log_lacks() {
        let mut t = Timeline::new(None);
        t.phases
            .push(ph(PhaseKind::TorchCompile, Source::Log, 10, 20));
        let mut n = Timeline::new(None);
        n.phases.push(ph(PhaseKind::WeightLoad, Source::Nvml, 2, 6));
        n.phases
            .push(ph(PhaseKind::TorchCompile, Source::Nvml, 9, 21));
        // The log has no KV line, but its compile covers this stretch.
        n.phases
            .push(ph(PhaseKind::KvCacheAllocation, Source::Nvml, 12, 13));
        n.phases
            .push(ph(PhaseKind::CudaGraphCapture, Source::Nvml, 21, 22));
        let added = add_nvml(&mut t, &n);
        assert_eq!(
            added,
            vec![
                PhaseKind::ModelLoad,
                PhaseKind::WeightLoad,
                PhaseKind::CudaGraphCapture
            ]
        );
        assert_eq!(t.get(PhaseKind::TorchCompile).unwrap().source, Source::Log);
        assert_eq!(t.get(PhaseKind::ModelLoad).unwrap().source, Source::Nvml);
        assert!(t.get(PhaseKind::KvCacheAllocation).is_none());
    }

    #[test]
    fn nvml_phases_move_onto_the_timeline_clock() {
        let mut t = Timeline::new(None);
        t.clock_offset_ns = 5 * S;
        let mut n = Timeline::new(None);
        n.clock_offset_ns = 7 * S;
        n.phases
            .push(ph(PhaseKind::CudaGraphCapture, Source::Nvml, 1, 2));
        add_nvml(&mut t, &n);
        let c = t.get(PhaseKind::CudaGraphCapture).unwrap();
        assert_eq!((c.start_ns, c.end_ns), (Some(3 * S), Some(4 * S)));
    }
}
