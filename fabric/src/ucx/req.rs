//! Request completion for non-blocking UCX calls: progress the worker and poll
//! `ucp_request_check_status`, bounded by the peer timeout and the cancel closure.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use super::loader::{StatusPtr, Ucp};
use super::sys::{ucp_worker_h, ucs_status_t, UCS_INPROGRESS, UCS_OK};
use crate::error::FabricError;

/// `UCS_ERR_LAST`: status pointers in (-100, 0) are error codes, not requests.
const UCS_ERR_LAST: isize = -100;

/// Limits every wait: the peer timeout, the cancel closure, and the endpoint's
/// error flag (set by the UCX error handler when the peer fails).
pub struct Waiter<'a> {
    pub ucp: &'static Ucp,
    pub worker: ucp_worker_h,
    pub cancel: &'a dyn Fn() -> bool,
    pub peer_timeout: Duration,
    pub ep_error: &'a std::sync::atomic::AtomicI32,
}

impl Waiter<'_> {
    /// Classifies the result of an `*_nbx` call: Ok(None) when already complete,
    /// Ok(Some(request)) when pending.
    pub fn start(
        &self,
        call: &'static str,
        p: StatusPtr,
    ) -> Result<Option<*mut c_void>, FabricError> {
        let v = p as isize;
        if v == 0 {
            Ok(None)
        } else if v < 0 && v > UCS_ERR_LAST {
            // An error code in pointer form; the range check makes the cast lossless.
            self.ucp.check(call, v as ucs_status_t)?;
            Ok(None)
        } else {
            Ok(Some(p))
        }
    }

    fn ep_failed(&self, what: &'static str) -> Result<(), FabricError> {
        let s = self.ep_error.load(std::sync::atomic::Ordering::Acquire);
        if s == 0 {
            return Ok(());
        }
        let code = s as ucs_status_t;
        Err(FabricError::Call {
            call: "ucp endpoint error handler",
            code: i64::from(s),
            message: format!(
                "peer failed while waiting for {what}: {}",
                self.ucp.status_str(code)
            ),
        })
    }

    /// Waits for every request in `reqs` (freeing each as it completes). On error,
    /// timeout or cancel the rest are abandoned (cancelled and freed; UCX releases
    /// them when they finish, and the buffers outlive the worker).
    pub fn wait_all(
        &self,
        reqs: &mut Vec<*mut c_void>,
        what: &'static str,
    ) -> Result<(), FabricError> {
        let r = self.wait_inner(reqs, what, 0);
        if r.is_err() {
            self.abandon(reqs);
        }
        r
    }

    /// Progresses until fewer than `max` requests of `reqs` are pending (a sliding
    /// window: the oldest need not finish first). On error all are abandoned.
    pub fn wait_below(
        &self,
        reqs: &mut Vec<*mut c_void>,
        max: usize,
        what: &'static str,
    ) -> Result<(), FabricError> {
        let r = self.wait_inner(reqs, what, max.saturating_sub(1));
        if r.is_err() {
            self.abandon(reqs);
        }
        r
    }

    /// Waits for one optional request.
    pub fn wait_one(
        &self,
        req: Option<*mut c_void>,
        what: &'static str,
    ) -> Result<(), FabricError> {
        let mut v: Vec<*mut c_void> = req.into_iter().collect();
        self.wait_all(&mut v, what)
    }

    fn wait_inner(
        &self,
        reqs: &mut Vec<*mut c_void>,
        what: &'static str,
        until: usize,
    ) -> Result<(), FabricError> {
        let deadline = Instant::now() + self.peer_timeout;
        let mut spins = 0u32;
        let mut idle = 0u32;
        while reqs.len() > until {
            // SAFETY: worker is live for the endpoint's lifetime; single-threaded use.
            if unsafe { (self.ucp.worker_progress)(self.worker) } == 0 {
                idle += 1;
                // On an oversubscribed host let the peer (maybe on this core) run.
                if idle.is_multiple_of(1024) {
                    std::thread::yield_now();
                }
            } else {
                idle = 0;
            }
            // Oldest first, up to the first still in progress: requests on one
            // endpoint and tag complete in about the order they were posted, so the
            // rest need no look (a 64-deep receive window would otherwise cost 64
            // status checks per progress call).
            let mut done = 0;
            let mut failed = None;
            for &req in reqs.iter() {
                // SAFETY: reqs holds pending requests returned by UCX and not yet freed.
                let st = unsafe { (self.ucp.request_check_status)(req) };
                if st == UCS_INPROGRESS {
                    break;
                }
                // SAFETY: the request completed; we free it exactly once (it leaves
                // `reqs` in the drain below).
                unsafe { (self.ucp.request_free)(req) };
                done += 1;
                if st != UCS_OK {
                    failed = Some(st);
                    break;
                }
            }
            reqs.drain(..done);
            if let Some(st) = failed {
                self.ep_failed(what)?;
                return Err(FabricError::Call {
                    call: what,
                    code: i64::from(st),
                    message: self.ucp.status_str(st),
                });
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                self.ep_failed(what)?;
                if (self.cancel)() {
                    return Err(FabricError::Cancelled);
                }
                if Instant::now() > deadline {
                    return Err(FabricError::Timeout(self.peer_timeout, what));
                }
            }
        }
        Ok(())
    }

    /// Cancels and frees still-pending requests.
    pub fn abandon(&self, reqs: &mut Vec<*mut c_void>) {
        for req in reqs.drain(..) {
            // SAFETY: req is a pending request of this worker, not yet freed; UCX
            // releases a freed-but-pending request when it completes.
            unsafe {
                (self.ucp.request_cancel)(self.worker, req);
                (self.ucp.request_free)(req);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn err_last_matches_header() {
        // ucs/type/status.h: UCS_ERR_LAST = -100.
        assert_eq!(super::UCS_ERR_LAST, -100);
    }
}
