//! Sample kinds: which [`SampleKind`] a sample's payload is, and the short name each
//! kind goes by in metrics labels, summaries and stores ("gpu", "host", "rdma",
//! "event", "self").

use crate::v1::{sample, Sample, SampleKind};

impl SampleKind {
    /// Every kind a sample can carry (not `Unspecified`), in wire order.
    pub const ALL: [SampleKind; 5] = [
        SampleKind::Gpu,
        SampleKind::Host,
        SampleKind::Rdma,
        SampleKind::Event,
        SampleKind::Self_,
    ];

    /// The kinds a collector produces on a period, each with per-sample metadata
    /// (every kind but `Event`), in wire order.
    pub const PERIODIC: [SampleKind; 4] = [
        SampleKind::Gpu,
        SampleKind::Host,
        SampleKind::Rdma,
        SampleKind::Self_,
    ];

    /// The kind's short name ("unspecified" for `Unspecified`).
    pub fn name(self) -> &'static str {
        match self {
            SampleKind::Unspecified => "unspecified",
            SampleKind::Gpu => "gpu",
            SampleKind::Host => "host",
            SampleKind::Rdma => "rdma",
            SampleKind::Event => "event",
            SampleKind::Self_ => "self",
        }
    }

    /// The kind of a short name given by [`SampleKind::name`].
    pub fn from_name(name: &str) -> Option<SampleKind> {
        SampleKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl sample::Data {
    /// The kind of this payload.
    pub fn kind(&self) -> SampleKind {
        match self {
            sample::Data::Gpu(_) => SampleKind::Gpu,
            sample::Data::Host(_) => SampleKind::Host,
            sample::Data::Rdma(_) => SampleKind::Rdma,
            sample::Data::Event(_) => SampleKind::Event,
            sample::Data::SelfStats(_) => SampleKind::Self_,
        }
    }
}

impl From<&sample::Data> for SampleKind {
    fn from(d: &sample::Data) -> Self {
        d.kind()
    }
}

impl Sample {
    /// The kind of this sample's payload; `Unspecified` when it has none.
    pub fn kind(&self) -> SampleKind {
        self.data
            .as_ref()
            .map_or(SampleKind::Unspecified, sample::Data::kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{Event, GpuSample, HostSample, RdmaSample, SelfSample};

    #[test]
    fn every_payload_has_its_kind_and_name() {
        let cases = [
            (sample::Data::Gpu(GpuSample::default()), "gpu"),
            (sample::Data::Host(HostSample::default()), "host"),
            (sample::Data::Rdma(RdmaSample::default()), "rdma"),
            (sample::Data::Event(Event::default()), "event"),
            (sample::Data::SelfStats(SelfSample::default()), "self"),
        ];
        for (d, name) in cases {
            let k = SampleKind::from(&d);
            assert_eq!(k.name(), name);
            assert_eq!(SampleKind::from_name(name), Some(k));
        }
        assert_eq!(SampleKind::from_name("unspecified"), None);
        assert_eq!(Sample::default().kind(), SampleKind::Unspecified);
    }

    #[test]
    fn all_covers_every_wire_value_but_unspecified() {
        let mut wire: Vec<i32> = SampleKind::ALL.iter().map(|k| *k as i32).collect();
        wire.sort_unstable();
        assert_eq!(wire, vec![1, 2, 3, 4, 5]);
        assert!(SampleKind::try_from(6).is_err());
    }

    #[test]
    fn periodic_is_all_but_event() {
        let rest: Vec<_> = SampleKind::ALL
            .into_iter()
            .filter(|k| *k != SampleKind::Event)
            .collect();
        assert_eq!(rest, SampleKind::PERIODIC);
    }
}
