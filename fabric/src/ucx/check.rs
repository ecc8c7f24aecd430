//! Contents verification over the UCX probe's control messages (not timed):
//! `VERIFY_PREP(size, op)` before an operation's measured phase (the responder
//! readies its buffer and answers `ACK`), and after it, when the responder is the
//! receiving side, `VERIFY_CHECK(size, op)` answered by `VERDICT(offset, bytes)`.
//! A read is checked by the driver itself.

use super::io::{expect, Ctrl, Io, ACK, VERDICT, VERIFY_CHECK, VERIFY_PREP};
use crate::error::FabricError;
use crate::plan::{Op, Verify};
use crate::verify::{self, Mismatch};

/// `VERDICT.count` of a mismatch: this flag, the expected byte, the byte found.
const MISMATCH: u64 = 1 << 16;

fn op_of(c: &Ctrl) -> Result<Op, FabricError> {
    Op::from_code(c.count)
        .ok_or_else(|| FabricError::BadPeer(format!("verification of unknown op in {c:?}")))
}

impl Io<'_> {
    /// Driver, before `op`'s measured phase at `size`: readies both buffers.
    pub fn verify_prepare(&self, op: Op, size: u64) -> Result<(), FabricError> {
        verify::prepare(self.view(), op, size, true)?;
        self.send_ctrl(Ctrl {
            cmd: VERIFY_PREP,
            size,
            count: op.code(),
        })?;
        expect(self.recv_ctrl("the responder's verification set-up")?, ACK)
    }

    /// Driver, after the phase: the receiving side's verdict; a mismatch is the
    /// error naming op, size and offset. `moved`: messages the phase moved.
    pub fn verify_finish(
        &self,
        op: Op,
        size: u64,
        moved: u64,
        corrupt: Option<u64>,
    ) -> Result<Verify, FabricError> {
        if moved == 0 {
            return Ok(Verify::Unverified("no message completed".into()));
        }
        let found = if verify::driver_receives(op) {
            verify::check(self.view(), size, corrupt)?
        } else {
            self.send_ctrl(Ctrl {
                cmd: VERIFY_CHECK,
                size,
                count: op.code(),
            })?;
            let v = self.recv_ctrl("the responder's verification verdict")?;
            expect(v, VERDICT)?;
            (v.count & MISMATCH != 0).then_some(Mismatch {
                offset: v.size,
                expected: (v.count >> 8) as u8,
                got: v.count as u8,
            })
        };
        match found {
            None => Ok(Verify::Verified),
            Some(m) => Err(m.into_error(op, size)),
        }
    }

    /// Responder: serves `VERIFY_PREP` and `VERIFY_CHECK`.
    pub fn verify_serve(&self, c: Ctrl, corrupt: Option<u64>) -> Result<(), FabricError> {
        let op = op_of(&c)?;
        if c.cmd == VERIFY_PREP {
            verify::prepare(self.view(), op, c.size, false)?;
            return self.send_ctrl(Ctrl {
                cmd: ACK,
                size: c.size,
                count: c.count,
            });
        }
        let verdict = match verify::check(self.view(), c.size, corrupt)? {
            None => Ctrl {
                cmd: VERDICT,
                size: 0,
                count: 0,
            },
            Some(m) => Ctrl {
                cmd: VERDICT,
                size: m.offset,
                count: MISMATCH | u64::from(m.expected) << 8 | u64::from(m.got),
            },
        };
        self.send_ctrl(verdict)
    }
}
