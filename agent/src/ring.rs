//! Bounded ring buffer of samples: every sample gets the next sequence number
//! (contiguous across kinds, starting at 1); samples older than the horizon or beyond
//! the capacity are evicted. Readers ask for a sequence number and learn explicitly
//! when it is gone (a [`Gap`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use prost::Message;
use servescope_proto::v1::{sample, Gap, Sample, SampleKind};
use tokio::sync::watch;

/// Number of [`SampleKind`] values, `Unspecified` included (for the latest-per-kind
/// table).
const KINDS: usize = SampleKind::ALL.len() + 1;

/// Limits of the ring.
#[derive(Debug, Clone, Copy)]
pub struct RingLimits {
    /// Samples older than this (relative to the newest) are evicted.
    pub horizon_ns: u64,
    /// Hard cap on the number of samples held.
    pub max_samples: usize,
    /// Hard cap on the encoded size of the samples held.
    pub max_bytes: usize,
}

struct Inner {
    buf: VecDeque<Arc<Sample>>,
    bytes: usize,
    next_seq: u64,
    latest: [Option<Arc<Sample>>; KINDS],
    /// (gpu index, xid) → count since agent start.
    xid_counts: BTreeMap<(u32, u64), u64>,
}

/// The ring buffer. Cheap to share (`Arc<Ring>`).
pub struct Ring {
    inner: Mutex<Inner>,
    limits: RingLimits,
    /// Carries the next sequence number to be assigned; readers wait on it.
    tx: watch::Sender<u64>,
}

/// What a read returns.
#[derive(Debug, Default)]
pub struct ReadResult {
    /// Set when the requested sequence number had already been evicted.
    pub gap: Option<Gap>,
    pub samples: Vec<Arc<Sample>>,
    /// The sequence number to ask for next.
    pub next: u64,
}

/// State of the ring for inventory and self-telemetry.
#[derive(Debug, Clone, Copy)]
pub struct RingState {
    pub oldest_seq: u64,
    pub next_seq: u64,
    pub samples: usize,
    pub bytes: usize,
}

impl Ring {
    pub fn new(limits: RingLimits) -> Self {
        let (tx, _) = watch::channel(1);
        Ring {
            inner: Mutex::new(Inner {
                buf: VecDeque::new(),
                bytes: 0,
                next_seq: 1,
                latest: Default::default(),
                xid_counts: BTreeMap::new(),
            }),
            limits,
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the deque half-updated in a
        // way that matters to readers, so recover from poisoning.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a sample, assigning its sequence number. Returns that number.
    pub fn push(&self, t_ns: u64, collect_ns: u64, data: sample::Data) -> u64 {
        let kind = data.kind() as usize;
        let xid = match &data {
            sample::Data::Event(e) => e.xid.map(|x| (e.gpu_index.unwrap_or(u32::MAX), x)),
            _ => None,
        };
        let mut g = self.lock();
        let seq = g.next_seq;
        g.next_seq += 1;
        let s = Arc::new(Sample {
            seq,
            t_ns,
            collect_ns,
            data: Some(data),
        });
        g.bytes += s.encoded_len();
        if let Some(slot) = g.latest.get_mut(kind) {
            *slot = Some(Arc::clone(&s));
        }
        if let Some(key) = xid {
            *g.xid_counts.entry(key).or_insert(0) += 1;
        }
        g.buf.push_back(s);
        self.evict(&mut g, t_ns);
        let next = g.next_seq;
        drop(g);
        self.tx.send_replace(next);
        seq
    }

    fn evict(&self, g: &mut Inner, newest_t_ns: u64) {
        let cutoff = newest_t_ns.saturating_sub(self.limits.horizon_ns);
        while let Some(front) = g.buf.front() {
            let over = g.buf.len() > self.limits.max_samples
                || g.bytes > self.limits.max_bytes
                || front.t_ns < cutoff;
            if !over || g.buf.len() == 1 {
                break;
            }
            let len = front.encoded_len();
            g.buf.pop_front();
            g.bytes = g.bytes.saturating_sub(len);
        }
    }

    /// Reads up to `max` samples starting at `from_seq`. `from_seq == 0` means the
    /// oldest retained sample and never reports a gap.
    pub fn read_from(&self, from_seq: u64, max: usize) -> ReadResult {
        let g = self.lock();
        let oldest = g.buf.front().map(|s| s.seq).unwrap_or(g.next_seq);
        let mut gap = None;
        let start = if from_seq == 0 {
            oldest
        } else if from_seq < oldest {
            gap = Some(Gap {
                requested_from_seq: from_seq,
                resumed_at_seq: oldest,
                lost: oldest - from_seq,
            });
            oldest
        } else {
            from_seq
        };
        let mut samples = Vec::new();
        if start < g.next_seq {
            let skip = usize::try_from(start - oldest).unwrap_or(usize::MAX);
            samples.extend(g.buf.iter().skip(skip).take(max).cloned());
        }
        let next = samples.last().map(|s| s.seq + 1).unwrap_or(start);
        ReadResult { gap, samples, next }
    }

    /// Waits on this to learn that new samples arrived.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    pub fn state(&self) -> RingState {
        let g = self.lock();
        RingState {
            oldest_seq: g.buf.front().map(|s| s.seq).unwrap_or(g.next_seq),
            next_seq: g.next_seq,
            samples: g.buf.len(),
            bytes: g.bytes,
        }
    }

    /// The newest sample of each kind that has produced one.
    pub fn latest(&self) -> Vec<Arc<Sample>> {
        self.lock().latest.iter().flatten().cloned().collect()
    }

    /// XID counts since start: (gpu index, xid, count).
    pub fn xid_counts(&self) -> Vec<(u32, u64, u64)> {
        self.lock()
            .xid_counts
            .iter()
            .map(|(&(g, x), &c)| (g, x, c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::{Event, HostSample};

    fn host() -> sample::Data {
        sample::Data::Host(HostSample::default())
    }

    fn ring(max_samples: usize) -> Ring {
        Ring::new(RingLimits {
            horizon_ns: u64::MAX,
            max_samples,
            max_bytes: usize::MAX,
        })
    }

    #[test]
    fn sequences_are_contiguous_from_one() {
        let r = ring(10);
        for i in 0..5 {
            assert_eq!(r.push(i, 0, host()), i + 1);
        }
        let got = r.read_from(0, 100);
        assert!(got.gap.is_none());
        let seqs: Vec<u64> = got.samples.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(got.next, 6);
    }

    #[test]
    fn wrap_evicts_oldest_and_reports_gap() {
        let r = ring(4);
        for i in 0..10 {
            r.push(i, 0, host());
        }
        let st = r.state();
        assert_eq!((st.oldest_seq, st.next_seq, st.samples), (7, 11, 4));
        let got = r.read_from(3, 100);
        let gap = got.gap.expect("gap reported");
        assert_eq!(
            (gap.requested_from_seq, gap.resumed_at_seq, gap.lost),
            (3, 7, 4)
        );
        let seqs: Vec<u64> = got.samples.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
        // Reading from inside the ring: no gap.
        let got = r.read_from(9, 100);
        assert!(got.gap.is_none());
        assert_eq!(got.samples.len(), 2);
        // Reading from the future: nothing yet, ask again for the same.
        let got = r.read_from(11, 100);
        assert!(got.samples.is_empty() && got.gap.is_none());
        assert_eq!(got.next, 11);
    }

    #[test]
    fn horizon_evicts_by_age() {
        let r = Ring::new(RingLimits {
            horizon_ns: 100,
            max_samples: 1000,
            max_bytes: usize::MAX,
        });
        for t in (0..1000).step_by(10) {
            r.push(t, 0, host());
        }
        let got = r.read_from(0, 1000);
        assert!(got.samples.iter().all(|s| s.t_ns >= 990 - 100));
        assert_eq!(got.samples.len(), 11);
    }

    #[test]
    fn byte_cap_bounds_memory_but_keeps_newest() {
        let r = Ring::new(RingLimits {
            horizon_ns: u64::MAX,
            max_samples: usize::MAX,
            max_bytes: 64,
        });
        for t in 0..100 {
            r.push(
                t,
                0,
                sample::Data::Event(Event {
                    message: "x".repeat(40),
                    ..Default::default()
                }),
            );
        }
        let st = r.state();
        assert!(st.samples >= 1 && st.bytes <= 64 + 60);
        assert_eq!(st.next_seq, 101);
    }

    #[test]
    fn max_per_read_and_continuation() {
        let r = ring(100);
        for i in 0..10 {
            r.push(i, 0, host());
        }
        let a = r.read_from(1, 4);
        assert_eq!(a.samples.len(), 4);
        let b = r.read_from(a.next, 100);
        assert_eq!(b.samples.first().map(|s| s.seq), Some(5));
    }

    #[test]
    fn latest_and_xid_counts() {
        let r = ring(100);
        r.push(1, 0, host());
        for _ in 0..3 {
            r.push(
                2,
                0,
                sample::Data::Event(Event {
                    kind: "xid".into(),
                    gpu_index: Some(0),
                    xid: Some(79),
                    ..Default::default()
                }),
            );
        }
        assert_eq!(r.latest().len(), 2);
        assert_eq!(r.xid_counts(), vec![(0, 79, 3)]);
    }
}
