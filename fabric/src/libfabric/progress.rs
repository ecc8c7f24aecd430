//! Posting into the operation contexts of `slots.rs` (with `-FI_EAGAIN`
//! retry), reading the CQ (and `fi_cq_readerr` on `-FI_EAVAIL`), and waiting for a
//! condition while honouring `cancel` and the peer timeout.

use std::ffi::{c_char, c_void};
use std::time::{Duration, Instant};

use super::consts as c;
use super::endpoint::LibfabricEndpoint;
use super::slots::{Counters, Slot, CTRL_LEN, CTRL_SLOT, CTRL_TAG, DATA_TAG};
use super::{ops, sys};
use crate::error::FabricError;

/// What the loop waits for, for the timeout message.
pub(super) struct Wait<'a> {
    pub what: &'static str,
    pub timeout: Duration,
    pub cancel: &'a dyn Fn() -> bool,
}

impl LibfabricEndpoint {
    fn slot_index(&self, slot: Slot, n: u64) -> usize {
        let w = self.window as u64 + 1;
        match slot {
            Slot::CtrlRx => 0,
            Slot::CtrlTx => 1,
            Slot::DataRx => 2 + (n % w) as usize,
            Slot::DataTx => 2 + w as usize + (n % w) as usize,
        }
    }

    pub(super) fn ctx_ptr(&mut self, slot: Slot, n: u64) -> *mut c_void {
        let i = self.slot_index(slot, n);
        std::ptr::addr_of_mut!(self.ctx[i]).cast()
    }

    fn slot_of(&self, p: *mut c_void) -> Option<Slot> {
        let base = self.ctx.as_ptr() as usize;
        let size = std::mem::size_of::<sys::fi_context2>();
        let off = (p as usize).checked_sub(base)?;
        let i = off / size;
        if off % size != 0 || i >= self.ctx.len() {
            return None;
        }
        Some(match i {
            0 => Slot::CtrlRx,
            1 => Slot::CtrlTx,
            i if i < 2 + self.window + 1 => Slot::DataRx,
            _ => Slot::DataTx,
        })
    }

    /// One `fi_cq_read` of up to 16 entries; the number of completions handled.
    pub(super) fn poll(&mut self) -> Result<usize, FabricError> {
        // SAFETY: zeroed entries are valid (null pointers, zero integers).
        let mut ents: [sys::fi_cq_tagged_entry; 16] = unsafe { std::mem::zeroed() };
        // SAFETY: cq is open with FI_CQ_FORMAT_TAGGED; the array holds 16 entries.
        let rc = unsafe { ops::cq_read(self.cq, ents.as_mut_ptr().cast(), ents.len()) };
        if rc == c::EAGAIN {
            return Ok(0);
        }
        if rc == c::EAVAIL {
            return Err(self.cq_error());
        }
        if rc < 0 {
            return Err(self.lib.err("fi_cq_read", rc));
        }
        let n = (rc as usize).min(ents.len());
        for e in &ents[..n] {
            match self.slot_of(e.op_context) {
                Some(Slot::CtrlRx) => {
                    let mut m = [0u8; CTRL_LEN];
                    if let Some(r) = &self.ctrl {
                        // SAFETY: the ctrl region holds 2*CTRL_SLOT >= CTRL_LEN bytes
                        // at its start (the receive slot), now filled by the provider.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                r.ptr().cast::<u8>(),
                                m.as_mut_ptr(),
                                CTRL_LEN,
                            )
                        };
                    }
                    self.cnt.ctrl_rx = Some(m);
                }
                Some(Slot::CtrlTx) => self.cnt.ctrl_tx += 1,
                Some(Slot::DataRx) => {
                    self.cnt.rx_done += 1;
                    if e.len == 0 {
                        self.cnt.rx_zero += 1;
                    }
                }
                Some(Slot::DataTx) => self.cnt.tx_done += 1,
                None => {}
            }
        }
        Ok(n)
    }

    fn cq_error(&mut self) -> FabricError {
        // SAFETY: zeroed error entry: err_data NULL/size 0 asks for no extra data.
        let mut e: sys::fi_cq_err_entry = unsafe { std::mem::zeroed() };
        // SAFETY: cq is open; e is ours.
        let rc = unsafe { ops::cq_readerr(self.cq, &mut e) };
        if rc < 0 {
            return self.lib.err("fi_cq_readerr", rc);
        }
        let mut buf = [0 as c_char; 256];
        // SAFETY: cq open; buf is ours; the returned string is NUL-terminated.
        let p = unsafe {
            ops::cq_strerror(
                self.cq,
                e.prov_errno,
                e.err_data,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let prov = super::info::cstr(p);
        let code = -i64::from(e.err.abs());
        FabricError::Call {
            call: "fi_cq_read",
            code,
            message: format!(
                "{} on {:?} completion (provider: {prov})",
                self.lib.strerror(code),
                self.slot_of(e.op_context)
            ),
        }
    }

    /// Polls until `cond` holds; `Timeout` after `w.timeout` without any completion.
    pub(super) fn wait(
        &mut self,
        w: &Wait<'_>,
        cond: impl Fn(&Counters) -> bool,
    ) -> Result<(), FabricError> {
        let mut last = Instant::now();
        let mut idle = 0u32;
        loop {
            if cond(&self.cnt) {
                return Ok(());
            }
            if self.poll()? > 0 {
                last = Instant::now();
                idle = 0;
                continue;
            }
            idle = idle.wrapping_add(1);
            if idle.is_multiple_of(16) {
                if (w.cancel)() {
                    return Err(FabricError::Cancelled);
                }
                if last.elapsed() > w.timeout {
                    return Err(FabricError::Timeout(w.timeout, w.what));
                }
                std::thread::yield_now();
            }
        }
    }

    /// Calls `post` until it stops answering `-FI_EAGAIN`, progressing meanwhile.
    pub(super) fn post(
        &mut self,
        call: &'static str,
        w: &Wait<'_>,
        post: &mut dyn FnMut() -> i64,
    ) -> Result<(), FabricError> {
        let start = Instant::now();
        loop {
            let rc = post();
            if rc == 0 {
                return Ok(());
            }
            if rc != c::EAGAIN {
                return Err(self.lib.err(call, rc));
            }
            if self.poll()? == 0 {
                if (w.cancel)() {
                    return Err(FabricError::Cancelled);
                }
                if start.elapsed() > w.timeout {
                    return Err(FabricError::Timeout(w.timeout, w.what));
                }
                std::thread::yield_now();
            }
        }
    }

    pub(super) fn peer_addr(&self) -> Result<u64, FabricError> {
        self.peer
            .ok_or_else(|| FabricError::BadPeer("not connected (call connect first)".into()))
    }

    fn ctrl_parts(&self) -> Result<(*mut u8, *mut c_void), FabricError> {
        let r = self
            .ctrl
            .as_ref()
            .ok_or_else(|| FabricError::Memory("host", "no control buffer".into()))?;
        Ok((r.ptr().cast(), r.desc))
    }

    pub(super) fn data_parts(&self) -> Result<(*mut c_void, *mut c_void), FabricError> {
        let r = self
            .data
            .as_ref()
            .ok_or_else(|| FabricError::Memory("host", "no data buffer".into()))?;
        Ok((r.ptr(), r.desc))
    }

    /// Posts the (single) control receive.
    pub(super) fn post_ctrl_recv(&mut self) -> Result<(), FabricError> {
        let (buf, desc) = self.ctrl_parts()?;
        let (ep, ctx) = (self.ep, self.ctx_ptr(Slot::CtrlRx, 0));
        let w = Wait {
            what: "posting a control receive",
            timeout: Duration::from_secs(10),
            cancel: &|| false,
        };
        self.post("fi_trecv", &w, &mut || {
            // SAFETY: ep enabled; buf is the registered ctrl receive slot.
            unsafe {
                ops::trecv(
                    ep,
                    buf.cast(),
                    CTRL_SLOT,
                    desc,
                    c::ADDR_UNSPEC,
                    CTRL_TAG,
                    0,
                    ctx,
                )
            }
        })
    }

    /// Sends one control message and waits for its completion.
    pub(super) fn send_ctrl(
        &mut self,
        msg: &[u8; CTRL_LEN],
        w: &Wait<'_>,
    ) -> Result<(), FabricError> {
        let (buf, desc) = self.ctrl_parts()?;
        let peer = self.peer_addr()?;
        // SAFETY: the send slot (CTRL_SLOT bytes from offset CTRL_SLOT) is idle:
        // every earlier control send was waited for.
        let tx = unsafe { buf.add(CTRL_SLOT) };
        // SAFETY: tx has CTRL_SLOT >= CTRL_LEN bytes.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), tx, CTRL_LEN) };
        let (ep, ctx) = (self.ep, self.ctx_ptr(Slot::CtrlTx, 0));
        let before = self.cnt.ctrl_tx;
        self.post("fi_tsend", w, &mut || {
            // SAFETY: ep enabled, peer inserted, tx registered (desc).
            unsafe { ops::tsend(ep, tx.cast(), CTRL_LEN, desc, peer, CTRL_TAG, ctx) }
        })?;
        self.wait(w, |c| c.ctrl_tx > before)
    }

    /// Waits for the next control message and re-posts the receive.
    pub(super) fn recv_ctrl(&mut self, w: &Wait<'_>) -> Result<[u8; CTRL_LEN], FabricError> {
        self.wait(w, |c| c.ctrl_rx.is_some())?;
        let m = self.cnt.ctrl_rx.take().unwrap_or([0u8; CTRL_LEN]);
        self.post_ctrl_recv()?;
        Ok(m)
    }

    /// Posts a data receive of `len` bytes into the data buffer.
    pub(super) fn post_data_recv(&mut self, len: usize, w: &Wait<'_>) -> Result<(), FabricError> {
        let (buf, desc) = self.data_parts()?;
        let (ep, ctx) = (self.ep, self.ctx_ptr(Slot::DataRx, self.cnt.rx_posted));
        self.post("fi_trecv", w, &mut || {
            // SAFETY: ep enabled; buf registered and at least len bytes (plan-sized).
            unsafe { ops::trecv(ep, buf, len, desc, c::ADDR_UNSPEC, DATA_TAG, 0, ctx) }
        })?;
        self.cnt.rx_posted += 1;
        Ok(())
    }

    /// Posts a data send (tagged) or RMA write/read of `len` bytes.
    pub(super) fn post_data_tx(
        &mut self,
        kind: TxKind,
        len: usize,
        w: &Wait<'_>,
    ) -> Result<(), FabricError> {
        let (buf, desc) = self.data_parts()?;
        let peer = self.peer_addr()?;
        let (ep, ctx) = (self.ep, self.ctx_ptr(Slot::DataTx, self.cnt.tx_posted));
        let remote = self.remote;
        let (call, addr, key) = match (kind, remote) {
            (TxKind::Send, _) => ("fi_tsend", 0, 0),
            (TxKind::Write, Some(r)) => ("fi_write", r.addr, r.key),
            (TxKind::Read, Some(r)) => ("fi_read", r.addr, r.key),
            (_, None) => return Err(FabricError::Unsupported("RMA: no peer buffer".into())),
        };
        self.post(call, w, &mut || {
            // SAFETY: ep enabled, peer inserted, buf registered with >= len bytes;
            // for RMA the peer's buffer is >= len (checked by the caller).
            unsafe {
                match kind {
                    TxKind::Send => ops::tsend(ep, buf, len, desc, peer, DATA_TAG, ctx),
                    TxKind::Write => ops::write(ep, buf, len, desc, peer, addr, key, ctx),
                    TxKind::Read => ops::read(ep, buf, len, desc, peer, addr, key, ctx),
                }
            }
        })?;
        self.cnt.tx_posted += 1;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxKind {
    Send,
    Write,
    Read,
}
