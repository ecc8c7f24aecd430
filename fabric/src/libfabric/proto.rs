//! The in-band protocol between driver and responder (private to this transport).
//!
//! Control messages (tag `CTRL_TAG`, 32 bytes) and data (tag `DATA_TAG`) never
//! match each other's receives. The driver leads: `Hello` (plan digest) →
//! `HelloAck`; per size and op a `Phase` → `Ready` handshake (the responder posts
//! its receives before `Ready`), then:
//! * latency: `warmup + latency_iterations` ping-pongs of data messages (an
//!   empty ping ends the phase early when `max_duration` runs out);
//! * tag bandwidth: windows of `window` sends; the responder re-posts its
//!   receives and answers `Ack`; the driver ends the phase with `window` empty
//!   messages, which complete the receives posted for the next window;
//! * RMA write/read: windows of `window` one-sided ops, then `Done` → `DoneAck`;
//! * contents verification around a bandwidth phase: `Prep` → `PrepAck` before,
//!   `Check` → `Verdict` after (check.rs);
//!
//! and finally `Bye` → `ByeAck`. Bandwidth is timed on the driver's clock over the
//! windows after warm-up, until `iterations` or `duration_per_size`.

use super::endpoint::LibfabricEndpoint;
use super::slots::CTRL_LEN;
use crate::endpoint::{PeerInfo, ProbeEndpoint};
use crate::error::FabricError;
use crate::plan::{Op, ProbePlan, SizeResult, TransportTruth};

const MAGIC: u32 = 0x5353_4650; // "SSFP"

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Kind {
    Hello = 1,
    HelloAck,
    Phase,
    Ready,
    Ack,
    Done,
    DoneAck,
    Bye,
    ByeAck,
    Prep,
    PrepAck,
    Check,
    Verdict,
}

const KINDS: [Kind; 13] = [
    Kind::Hello,
    Kind::HelloAck,
    Kind::Phase,
    Kind::Ready,
    Kind::Ack,
    Kind::Done,
    Kind::DoneAck,
    Kind::Bye,
    Kind::ByeAck,
    Kind::Prep,
    Kind::PrepAck,
    Kind::Check,
    Kind::Verdict,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ctrl {
    pub kind: Kind,
    pub a: u64,
    pub b: u64,
    pub c: u64,
}

impl Ctrl {
    pub fn new(kind: Kind, a: u64, b: u64, c: u64) -> Ctrl {
        Ctrl { kind, a, b, c }
    }
    pub fn encode(&self) -> [u8; CTRL_LEN] {
        let mut m = [0u8; CTRL_LEN];
        m[0..4].copy_from_slice(&(self.kind as u32).to_le_bytes());
        m[4..8].copy_from_slice(&MAGIC.to_le_bytes());
        m[8..16].copy_from_slice(&self.a.to_le_bytes());
        m[16..24].copy_from_slice(&self.b.to_le_bytes());
        m[24..32].copy_from_slice(&self.c.to_le_bytes());
        m
    }
    pub fn decode(m: &[u8; CTRL_LEN]) -> Result<Ctrl, FabricError> {
        let u32_at = |i: usize| u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&m[i..i + 8]);
            u64::from_le_bytes(a)
        };
        if u32_at(4) != MAGIC {
            return Err(FabricError::BadPeer("control message without magic".into()));
        }
        let k = u32_at(0);
        let kind = KINDS
            .iter()
            .copied()
            .find(|x| *x as u32 == k)
            .ok_or_else(|| FabricError::BadPeer(format!("unknown control message {k}")))?;
        Ok(Ctrl::new(kind, u64_at(8), u64_at(16), u64_at(24)))
    }
}

/// Phase kinds carried in `Phase.a` (low byte; size index above).
pub(super) const LATENCY: u64 = 1;
pub(super) const TAG_BW: u64 = 2;
pub(super) const RMA_WRITE: u64 = 3;
pub(super) const RMA_READ: u64 = 4;

/// FNV-1a over what both sides must agree on.
pub(super) fn digest(plan: &ProbePlan) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: u64| {
        for b in v.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    plan.sizes.iter().for_each(|&s| eat(s));
    plan.ops.iter().for_each(|o| eat(*o as u64 + 1000));
    eat(plan.window.into());
    eat(plan.iterations.into());
    eat(plan.latency_iterations.into());
    eat(plan.warmup.into());
    h
}

pub(super) fn expect_kind(m: [u8; CTRL_LEN], kind: Kind) -> Result<Ctrl, FabricError> {
    let c = Ctrl::decode(&m)?;
    if c.kind != kind {
        return Err(FabricError::BadPeer(format!(
            "expected {kind:?}, got {:?}",
            c.kind
        )));
    }
    Ok(c)
}

pub(super) fn usize_of(v: u64) -> Result<usize, FabricError> {
    usize::try_from(v).map_err(|_| FabricError::BadPeer(format!("size {v}")))
}

impl LibfabricEndpoint {
    /// Checks, on either side, that this endpoint can run `plan`.
    pub(super) fn check_plan(&self, plan: &ProbePlan, driver: bool) -> Result<(), FabricError> {
        plan.validate()?;
        if plan.window as usize > self.window {
            return Err(FabricError::Unsupported(format!(
                "window {} (endpoint opened for {})",
                plan.window, self.window
            )));
        }
        let need = plan.buffer_bytes();
        let have = self.data.as_ref().map_or(0, |d| d.len() as u64);
        if need > have {
            return Err(FabricError::Unsupported(format!(
                "{need}-byte messages (endpoint opened with a {have}-byte buffer)"
            )));
        }
        if self.max_msg > 0 && need > self.max_msg {
            return Err(FabricError::Unsupported(format!(
                "{need}-byte messages: provider {} max_msg_size is {}",
                self.truth.provider, self.max_msg
            )));
        }
        for op in plan.ops.iter().filter(|o| **o != Op::Tag) {
            if !self.rma {
                return Err(FabricError::Unsupported(format!(
                    "{}: provider {} does not offer FI_RMA",
                    op.name(),
                    self.truth.provider
                )));
            }
            match self.remote {
                None if driver => {
                    return Err(FabricError::Unsupported(format!(
                        "{}: the peer published no RMA buffer",
                        op.name()
                    )))
                }
                Some(r) if driver && r.len < need => {
                    return Err(FabricError::BadPeer(format!(
                        "peer RMA buffer of {} bytes, plan needs {need}",
                        r.len
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl ProbeEndpoint for LibfabricEndpoint {
    fn local_info(&self) -> PeerInfo {
        self.local()
    }
    fn connect(&mut self, peer: &PeerInfo) -> Result<(), FabricError> {
        self.insert_peer(peer)
    }
    fn run_driver(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<SizeResult>, FabricError> {
        self.drive(plan, cancel)
    }
    fn run_responder(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<(), FabricError> {
        self.respond(plan, cancel)
    }
    fn truth(&self) -> TransportTruth {
        self.truth.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_round_trip_and_garbage() {
        for k in KINDS {
            let c = Ctrl::new(k, 1, u64::MAX, 7);
            assert_eq!(Ctrl::decode(&c.encode()).unwrap(), c);
        }
        assert!(Ctrl::decode(&[0u8; CTRL_LEN]).is_err());
        let mut m = Ctrl::new(Kind::Ack, 0, 0, 0).encode();
        m[0] = 99;
        assert!(Ctrl::decode(&m).is_err());
    }

    #[test]
    fn digest_differs_with_plan() {
        let a = ProbePlan::default();
        let b = ProbePlan {
            window: 8,
            ..Default::default()
        };
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(digest(&a), digest(&a.clone()));
    }
}
