//! Selection of the latest sample of each kind.

use servescope_proto::v1::{sample, GpuReading, HostSample, RdmaSample, Sample, SelfSample};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Gpu,
    Host,
    Rdma,
    SelfStats,
}

impl Kind {
    pub(super) const ALL: [Kind; 4] = [Kind::Gpu, Kind::Host, Kind::Rdma, Kind::SelfStats];

    fn of(s: &Sample) -> Option<Kind> {
        match s.data.as_ref()? {
            sample::Data::Gpu(_) => Some(Kind::Gpu),
            sample::Data::Host(_) => Some(Kind::Host),
            sample::Data::Rdma(_) => Some(Kind::Rdma),
            sample::Data::SelfStats(_) => Some(Kind::SelfStats),
            sample::Data::Event(_) => None,
        }
    }
}

#[derive(Default)]
pub(super) struct Latest<'a> {
    pub(super) by_kind: [Option<&'a Sample>; 4],
    pub(super) host: Option<&'a HostSample>,
    pub(super) rdma: Option<&'a RdmaSample>,
    pub(super) self_stats: Option<&'a SelfSample>,
    gpu: Option<&'a [GpuReading]>,
}

impl<'a> Latest<'a> {
    pub(super) fn pick(samples: &[&'a Sample]) -> Self {
        let mut l = Latest::default();
        for &s in samples {
            let Some(k) = Kind::of(s) else { continue };
            let slot = &mut l.by_kind[k as usize];
            // Greatest t_ns wins; on a tie the later one in the slice.
            if slot.is_none_or(|prev| s.t_ns >= prev.t_ns) {
                *slot = Some(s);
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

    /// The latest sample of each kind, in [`Kind::ALL`] order.
    pub(super) fn samples(&self) -> impl Iterator<Item = &'a Sample> + '_ {
        Kind::ALL
            .into_iter()
            .filter_map(|k| self.by_kind[k as usize])
    }
}
