//! Selection of the latest sample of each periodic kind.

use servescope_proto::v1::{
    sample, GpuReading, HostSample, RdmaSample, Sample, SampleKind, SelfSample,
};

/// The slot of a periodic kind in [`SampleKind::PERIODIC`]; `None` for events.
fn slot(s: &Sample) -> Option<usize> {
    let k = s.kind();
    SampleKind::PERIODIC.iter().position(|p| *p == k)
}

#[derive(Default)]
pub(super) struct Latest<'a> {
    by_kind: [Option<&'a Sample>; SampleKind::PERIODIC.len()],
    pub(super) host: Option<&'a HostSample>,
    pub(super) rdma: Option<&'a RdmaSample>,
    pub(super) self_stats: Option<&'a SelfSample>,
    gpu: Option<&'a [GpuReading]>,
}

impl<'a> Latest<'a> {
    pub(super) fn pick(samples: &[&'a Sample]) -> Self {
        let mut l = Latest::default();
        for &s in samples {
            let Some(i) = slot(s) else { continue };
            let cur = &mut l.by_kind[i];
            // Greatest t_ns wins; on a tie the later one in the slice.
            if cur.is_none_or(|prev| s.t_ns >= prev.t_ns) {
                *cur = Some(s);
            }
        }
        for s in l.by_kind.into_iter().flatten() {
            match &s.data {
                Some(sample::Data::Gpu(g)) => l.gpu = Some(&g.gpus),
                Some(sample::Data::Host(h)) => l.host = Some(h),
                Some(sample::Data::Rdma(r)) => l.rdma = Some(r),
                Some(sample::Data::SelfStats(x)) => l.self_stats = Some(x),
                _ => {}
            }
        }
        l
    }

    pub(super) fn gpu_readings(&self) -> &'a [GpuReading] {
        self.gpu.unwrap_or(&[])
    }

    /// The latest sample of each kind, in [`SampleKind::PERIODIC`] order.
    pub(super) fn samples(&self) -> impl Iterator<Item = &'a Sample> + '_ {
        self.by_kind.iter().filter_map(|s| *s)
    }
}
