//! Posting and completing the probe's operations on one endpoint: tagged sends and
//! receives (control and data on different tags), RMA put/get and flush.

use std::ffi::c_void;

use super::endpoint::UcxEndpoint;
use super::req::Waiter;
use super::sys::{ucp_request_param_t, UCP_OP_ATTR_FIELD_MEMORY_TYPE};
use crate::error::FabricError;
use crate::plan::{Op, ProbePlan};

pub(super) const TAG_DATA: u64 = 0x5e5c_0000_0000_00da;
pub(super) const TAG_CTRL: u64 = 0x5e5c_0000_0000_0c71;
pub(super) const MASK: u64 = u64::MAX;

pub(super) const PINGPONG: u32 = 1;
pub(super) const RMA_DONE: u32 = 3;
pub(super) const BYE: u32 = 4;
pub(super) const ACK: u32 = 5;
/// `STREAM(size, n)`: n data messages follow, sent with a sliding window; the
/// responder keeps [`STREAM_DEPTH`] receives posted ahead and acks once all n came.
pub(super) const STREAM: u32 = 6;
/// The responder's answer to `STREAM` once its first receives are posted: the
/// driver sends no data before it, so that no message lands unexpected (UCX then
/// buffers it and copies it again on the receive; a responder that starts behind
/// that way stayed behind: 64 KiB streams over tcp ran at 2–3.5 GB/s instead of 5).
pub(super) const READY: u32 = 7;
/// Receives a responder keeps posted during a `STREAM`: enough that a sender's
/// window (≤ 16 by default) never meets an unposted receive, which stalls a
/// rendezvous send until the receive appears.
pub(super) const STREAM_DEPTH: usize = 64;
/// `VERIFY_PREP(size, op)`: ready the buffer for `op`'s contents check; `ACK`.
pub(super) const VERIFY_PREP: u32 = 8;
/// `VERIFY_CHECK(size, op)`: check the received bytes; answered by `VERDICT`.
pub(super) const VERIFY_CHECK: u32 = 9;
/// `VERDICT(offset, mismatch flag | expected | got)`.
pub(super) const VERDICT: u32 = 10;

/// Control message: [cmd u32][0 u32][size u64][count u64], little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ctrl {
    pub cmd: u32,
    pub size: u64,
    pub count: u64,
}

impl Ctrl {
    pub fn encode(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..4].copy_from_slice(&self.cmd.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..].copy_from_slice(&self.count.to_le_bytes());
        b
    }
    pub fn decode(b: &[u8; 24]) -> Ctrl {
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        Ctrl {
            cmd: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            size: u64_at(8),
            count: u64_at(16),
        }
    }
}

/// Posts sends, receives, puts and gets on one endpoint.
pub(super) struct Io<'a> {
    e: &'a UcxEndpoint,
    pub w: Waiter<'a>,
    /// For data on the probe buffer (its memory type); `ctrl` for host control messages.
    param: ucp_request_param_t,
    ctrl: ucp_request_param_t,
}

impl<'a> Io<'a> {
    pub fn new(e: &'a UcxEndpoint, plan: &ProbePlan, cancel: &'a dyn Fn() -> bool) -> Self {
        Io {
            e,
            w: Waiter {
                ucp: e.ucp,
                worker: e.worker,
                cancel,
                peer_timeout: plan.peer_timeout,
                ep_error: &e.ep_error,
            },
            param: data_param(e),
            // SAFETY: plain data; zero = no optional fields (byte datatype).
            ctrl: unsafe { std::mem::zeroed() },
        }
    }

    fn param_for(&self, tag: u64) -> &ucp_request_param_t {
        if tag == TAG_CTRL {
            &self.ctrl
        } else {
            &self.param
        }
    }

    pub fn data_ptr(&self) -> *mut c_void {
        self.e.buf.ptr()
    }

    pub fn view(&self) -> crate::verify::MemRef<'_> {
        self.e.buf.view()
    }

    pub fn send(
        &self,
        buf: *const c_void,
        len: usize,
        tag: u64,
    ) -> Result<Option<*mut c_void>, FabricError> {
        // SAFETY: ep is connected; buf points at len bytes that outlive the request
        // (endpoint buffer or a caller's stack array waited on before it goes away).
        let p = unsafe { (self.e.ucp.tag_send_nbx)(self.e.ep, buf, len, tag, self.param_for(tag)) };
        self.w.start("ucp_tag_send_nbx", p)
    }

    pub fn recv(
        &self,
        buf: *mut c_void,
        len: usize,
        tag: u64,
    ) -> Result<Option<*mut c_void>, FabricError> {
        // SAFETY: worker is live; buf has len writable bytes outliving the request.
        let p = unsafe {
            (self.e.ucp.tag_recv_nbx)(self.e.worker, buf, len, tag, MASK, self.param_for(tag))
        };
        self.w.start("ucp_tag_recv_nbx", p)
    }

    pub fn send_ctrl(&self, c: Ctrl) -> Result<(), FabricError> {
        let b = Box::new(c.encode());
        let r = self.send(b.as_ptr().cast::<c_void>(), b.len(), TAG_CTRL)?;
        if let Err(e) = self.w.wait_one(r, "control message send") {
            // An abandoned send may still read its buffer: keep it alive for good.
            std::mem::forget(b);
            return Err(e);
        }
        Ok(())
    }

    pub fn recv_ctrl(&self, what: &'static str) -> Result<Ctrl, FabricError> {
        let mut b = Box::new([0u8; 24]);
        let r = self.recv(b.as_mut_ptr().cast::<c_void>(), 24, TAG_CTRL)?;
        if let Err(e) = self.w.wait_one(r, what) {
            // An abandoned receive may still land: keep its buffer alive for good.
            std::mem::forget(b);
            return Err(e);
        }
        Ok(Ctrl::decode(&b))
    }

    fn rma(&self, op: Op, len: usize) -> Result<Option<*mut c_void>, FabricError> {
        let r = self.e.remote.as_ref().ok_or_else(|| {
            FabricError::Unsupported(format!("{}: the peer published no RMA buffer", op.name()))
        })?;
        if len as u64 > r.len {
            return Err(FabricError::BadPeer(format!(
                "peer buffer {} < {len} bytes",
                r.len
            )));
        }
        let ucp = self.e.ucp;
        // SAFETY: ep/rkey are live; our buffer has len bytes; the remote range
        // [addr, addr+len) lies in the peer's mapped buffer (checked above).
        let p = unsafe {
            if op == Op::RmaWrite {
                (ucp.put_nbx)(self.e.ep, self.data_ptr(), len, r.addr, r.rkey, &self.param)
            } else {
                (ucp.get_nbx)(self.e.ep, self.data_ptr(), len, r.addr, r.rkey, &self.param)
            }
        };
        self.w.start(
            if op == Op::RmaWrite {
                "ucp_put_nbx"
            } else {
                "ucp_get_nbx"
            },
            p,
        )
    }

    pub fn flush(&self) -> Result<(), FabricError> {
        // SAFETY: ep is live.
        let p = unsafe { (self.e.ucp.ep_flush_nbx)(self.e.ep, &self.ctrl) };
        let r = self.w.start("ucp_ep_flush_nbx", p)?;
        self.w.wait_one(r, "ucp_ep_flush_nbx")
    }

    /// One window of a streamed RMA phase: `n` puts or gets, keeping at most `n` in
    /// flight across windows (`inflight`), as ucx_perftest's `-O` does.
    pub fn stream_window(
        &self,
        op: Op,
        len: usize,
        n: u32,
        inflight: &mut Vec<*mut c_void>,
    ) -> Result<(), FabricError> {
        for _ in 0..n {
            self.w
                .wait_below(inflight, n as usize, "a send slot in the window")?;
            inflight.extend(self.rma(op, len)?);
        }
        Ok(())
    }

    /// Waits for the responder's acknowledgement of one tag window.
    /// Sends `n` tagged messages as one stream: announce, keep `window` sends in
    /// flight, wait for the last and for the responder's ack.
    pub fn tag_stream(
        &self,
        len: usize,
        n: u64,
        window: u32,
        inflight: &mut Vec<*mut c_void>,
    ) -> Result<(), FabricError> {
        self.send_ctrl(Ctrl {
            cmd: STREAM,
            size: len as u64,
            count: n,
        })?;
        expect(
            self.recv_ctrl("the responder's receives for the stream")?,
            READY,
        )?;
        for _ in 0..n {
            self.w
                .wait_below(inflight, window as usize, "a send slot in the stream")?;
            inflight.extend(self.send(self.data_ptr(), len, TAG_DATA)?);
        }
        self.w.wait_all(inflight, "the stream's last sends")?;
        self.tag_ack()
    }

    /// The responder's side of [`Io::tag_stream`].
    pub fn recv_stream(&self, len: usize, n: u64) -> Result<(), FabricError> {
        let mut reqs = Vec::with_capacity(STREAM_DEPTH);
        let res = (|| {
            let first = n.min(STREAM_DEPTH as u64);
            for _ in 0..first {
                reqs.extend(self.recv(self.data_ptr(), len, TAG_DATA)?);
            }
            self.send_ctrl(Ctrl {
                cmd: READY,
                size: len as u64,
                count: n,
            })?;
            for _ in first..n {
                self.w
                    .wait_below(&mut reqs, STREAM_DEPTH, "a message of the driver's stream")?;
                reqs.extend(self.recv(self.data_ptr(), len, TAG_DATA)?);
            }
            self.w.wait_all(&mut reqs, "the end of the driver's stream")
        })();
        self.w.abandon(&mut reqs);
        res?;
        self.send_ctrl(Ctrl {
            cmd: ACK,
            size: len as u64,
            count: n,
        })
    }

    pub fn tag_ack(&self) -> Result<(), FabricError> {
        expect(self.recv_ctrl("window ack from the responder")?, ACK)
    }

    /// Ends an RMA phase: flushes (every put/get complete at the responder) and tells
    /// the responder. Part of the measured time.
    pub fn rma_end(&self, len: usize, windows: u64, n: u32) -> Result<(), FabricError> {
        self.flush()?;
        self.send_ctrl(Ctrl {
            cmd: RMA_DONE,
            size: len as u64,
            count: windows.saturating_mul(u64::from(n)),
        })
    }

    /// One round trip: send, then receive the echo.
    pub fn ping(&self, len: usize) -> Result<(), FabricError> {
        let mut reqs = Vec::with_capacity(2);
        let res = (|| {
            reqs.extend(self.recv(self.data_ptr(), len, TAG_DATA)?);
            reqs.extend(self.send(self.data_ptr(), len, TAG_DATA)?);
            self.w.wait_all(&mut reqs, "ping-pong echo")
        })();
        self.w.abandon(&mut reqs);
        res
    }
}

/// Request parameters for the probe buffer: its memory type, so UCX need not guess.
fn data_param(e: &UcxEndpoint) -> ucp_request_param_t {
    // SAFETY: plain data; zero = no optional fields (byte datatype).
    let mut p: ucp_request_param_t = unsafe { std::mem::zeroed() };
    p.op_attr_mask = UCP_OP_ATTR_FIELD_MEMORY_TYPE;
    p.memory_type = e.buf.memory_type();
    p
}

pub(super) fn expect(c: Ctrl, cmd: u32) -> Result<(), FabricError> {
    if c.cmd == cmd {
        Ok(())
    } else {
        Err(FabricError::BadPeer(format!(
            "expected control {cmd}, got {c:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_round_trips() {
        let c = Ctrl {
            cmd: STREAM,
            size: 1 << 20,
            count: 16,
        };
        assert_eq!(Ctrl::decode(&c.encode()), c);
    }
}
