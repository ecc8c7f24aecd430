//! Contents verification over the libfabric probe's control messages (not timed):
//! `Prep(op, size)` before an operation's measured phase (the responder readies its
//! buffer and answers `PrepAck`), and after it, when the responder is the receiving
//! side, `Check(op, size)` answered by `Verdict(mismatch, offset, expected << 8 |
//! got)`. A read is checked by the driver itself.

use super::endpoint::LibfabricEndpoint;
use super::progress::Wait;
use super::proto::{expect_kind, Ctrl, Kind};
use crate::error::FabricError;
use crate::plan::{Op, Verify};
use crate::verify::{self, MemRef, Mismatch};

impl LibfabricEndpoint {
    fn view(&self) -> Result<MemRef<'_>, FabricError> {
        self.data
            .as_ref()
            .map(|d| d.view())
            .ok_or_else(|| FabricError::Unsupported("verification without a data buffer".into()))
    }

    /// Driver, before `op`'s measured phase at `size`: readies both buffers.
    pub(super) fn verify_prepare(
        &mut self,
        op: Op,
        size: u64,
        w: &Wait<'_>,
    ) -> Result<(), FabricError> {
        verify::prepare(self.view()?, op, size, true)?;
        self.send_ctrl(&Ctrl::new(Kind::Prep, op.code(), size, 0).encode(), w)?;
        expect_kind(self.recv_ctrl(w)?, Kind::PrepAck).map(|_| ())
    }

    /// Driver, after the phase: the receiving side's verdict; a mismatch is the
    /// error naming op, size and offset. `moved`: messages the phase moved.
    pub(super) fn verify_finish(
        &mut self,
        op: Op,
        size: u64,
        moved: u64,
        corrupt: Option<u64>,
        w: &Wait<'_>,
    ) -> Result<Verify, FabricError> {
        if moved == 0 {
            return Ok(Verify::Unverified("no message completed".into()));
        }
        let found = if verify::driver_receives(op) {
            verify::check(self.view()?, size, corrupt)?
        } else {
            self.send_ctrl(&Ctrl::new(Kind::Check, op.code(), size, 0).encode(), w)?;
            let v = expect_kind(self.recv_ctrl(w)?, Kind::Verdict)?;
            (v.a != 0).then_some(Mismatch {
                offset: v.b,
                expected: (v.c >> 8) as u8,
                got: v.c as u8,
            })
        };
        match found {
            None => Ok(Verify::Verified),
            Some(m) => Err(m.into_error(op, size)),
        }
    }

    /// Responder: serves `Prep` and `Check`.
    pub(super) fn verify_serve(
        &mut self,
        m: Ctrl,
        corrupt: Option<u64>,
        w: &Wait<'_>,
    ) -> Result<(), FabricError> {
        let op = Op::from_code(m.a)
            .ok_or_else(|| FabricError::BadPeer(format!("verification of unknown op {}", m.a)))?;
        let reply = if m.kind == Kind::Prep {
            verify::prepare(self.view()?, op, m.b, false)?;
            Ctrl::new(Kind::PrepAck, m.a, m.b, 0)
        } else {
            match verify::check(self.view()?, m.b, corrupt)? {
                None => Ctrl::new(Kind::Verdict, 0, 0, 0),
                Some(x) => Ctrl::new(
                    Kind::Verdict,
                    1,
                    x.offset,
                    u64::from(x.expected) << 8 | u64::from(x.got),
                ),
            }
        };
        self.send_ctrl(&reply.encode(), w)
    }
}
