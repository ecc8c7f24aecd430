//! The in-band protocol of a UCX probe. Control and data use different tags.
//! The responder loops on control messages from the driver:
//! - `PINGPONG(size, n)`: n times receive a data message and send it back;
//! - `STREAM(size, n)`: post the first receives, answer `READY`, receive n data
//!   messages keeping receives posted ahead of the sender's sliding window, then
//!   send `ACK` (the tag bandwidth phase);
//! - `RMA_DONE`: the driver finished (and flushed) an RMA phase of puts or gets;
//! - `VERIFY_PREP` / `VERIFY_CHECK`: contents verification around a phase (check.rs);
//! - `BYE`: reply `ACK` and return Ok.
//!
//! While it waits it progresses its worker, which also serves RMA that UCX
//! emulates over active messages (e.g. on tcp). Bandwidth is on the driver's clock.

use std::time::Instant;

use super::endpoint::UcxEndpoint;
use super::io::{
    expect, Ctrl, Io, ACK, BYE, PINGPONG, RMA_DONE, STREAM, TAG_DATA, VERIFY_CHECK, VERIFY_PREP,
};
use crate::error::FabricError;
use crate::plan::{Op, ProbePlan, SizeResult, Verify};
fn pct(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    sorted.get((sorted.len() - 1) * p / 100).copied()
}

pub(super) fn drive(
    e: &mut UcxEndpoint,
    plan: &ProbePlan,
    cancel: &dyn Fn() -> bool,
) -> Result<Vec<SizeResult>, FabricError> {
    plan.validate()?;
    if e.ep.is_null() {
        return Err(FabricError::BadPeer("run_driver before connect".into()));
    }
    let start = Instant::now();
    let mut out = Vec::new();
    let mut stopped = None;
    {
        let io = Io::new(e, plan, cancel);
        let over = || start.elapsed() >= plan.max_duration;
        let body = sizes(&io, plan, &over, &mut out, &mut stopped);
        // A contents mismatch still ends the session cleanly, then is the answer.
        if let Err(err) = body {
            if !matches!(err, FabricError::Mismatch { .. }) {
                return Err(err);
            }
            let _ = bye(&io);
            return Err(err);
        }
        bye(&io)?;
    }
    if let Some(s) = stopped {
        e.truth.notes.push(format!(
            "stopped at max_duration {:?} before finishing size {s}",
            plan.max_duration
        ));
    }
    Ok(out)
}

fn bye(io: &Io) -> Result<(), FabricError> {
    io.send_ctrl(Ctrl {
        cmd: BYE,
        size: 0,
        count: 0,
    })?;
    expect(io.recv_ctrl("bye ack from the responder")?, ACK)
}

/// Every size of the plan: latency, then each op's bandwidth phase, each checked
/// afterwards when the plan verifies contents.
fn sizes(
    io: &Io,
    plan: &ProbePlan,
    over: &dyn Fn() -> bool,
    out: &mut Vec<SizeResult>,
    stopped: &mut Option<u64>,
) -> Result<(), FabricError> {
    for &size in &plan.sizes {
        let len = usize::try_from(size).map_err(|_| FabricError::BadPeer("size".into()))?;
        let mut lat = (None, None);
        if plan.ops.contains(&Op::Tag) && plan.latency_iterations > 0 {
            lat = latency(io, plan, size, len)?;
        }
        for &op in &plan.ops {
            if over() {
                *stopped = Some(size);
                return Ok(());
            }
            if plan.verify {
                io.verify_prepare(op, size)?;
            }
            let mut r = if op == Op::Tag {
                tag_bandwidth(io, plan, size, len, lat, over)?
            } else {
                rma_bandwidth(io, plan, op, size, len, over)?
            };
            if plan.verify {
                let moved = r.result.messages.max(r.moved_in_warmup);
                r.result.verify = io.verify_finish(op, size, moved, plan.corrupt_received_byte)?;
            }
            out.push(r.result);
        }
    }
    Ok(())
}

/// A phase's result and the messages its (untimed) warm-up moved.
struct Phase {
    result: SizeResult,
    moved_in_warmup: u64,
}

fn latency(
    io: &Io,
    plan: &ProbePlan,
    size: u64,
    len: usize,
) -> Result<(Option<u64>, Option<u64>), FabricError> {
    let n = plan.warmup + plan.latency_iterations;
    io.send_ctrl(Ctrl {
        cmd: PINGPONG,
        size,
        count: u64::from(n),
    })?;
    let mut v = Vec::with_capacity(plan.latency_iterations.min(1 << 20) as usize);
    for i in 0..n {
        let t = Instant::now();
        io.ping(len)?;
        if i >= plan.warmup {
            v.push(u64::try_from(t.elapsed().as_nanos() / 2).unwrap_or(u64::MAX));
        }
    }
    v.sort_unstable();
    Ok((pct(&v, 50), pct(&v, 99)))
}

/// RMA is streamed as ucp_put_bw does: at most `window` operations in flight (a
/// sliding window), flushed once at the end. None is in flight when the clock
/// starts; all complete when it stops.
fn rma_bandwidth(
    io: &Io,
    plan: &ProbePlan,
    op: Op,
    size: u64,
    len: usize,
    over: &dyn Fn() -> bool,
) -> Result<Phase, FabricError> {
    let mut inflight: Vec<*mut std::ffi::c_void> = Vec::new();
    let mut t = Instant::now();
    let mut windows = 0u64;
    let res = (|| -> Result<(), FabricError> {
        let step = |io: &Io, inflight: &mut Vec<*mut std::ffi::c_void>| {
            io.stream_window(op, len, plan.window, inflight)
        };
        for _ in 0..plan.warmup {
            step(io, &mut inflight)?;
        }
        // The warm-up lands before the clock starts (ucx_perftest puts a barrier
        // there): its puts must not finish on the measured time.
        io.w.wait_all(&mut inflight, "the warm-up window")?;
        io.flush()?;
        t = Instant::now();
        while windows < u64::from(plan.iterations)
            && t.elapsed() < plan.duration_per_size
            && !over()
        {
            step(io, &mut inflight)?;
            windows += 1;
        }
        io.w.wait_all(&mut inflight, "the last window")?;
        io.rma_end(len, windows + u64::from(plan.warmup), plan.window)
    })();
    io.w.abandon(&mut inflight);
    res?;
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    let messages = windows * u64::from(plan.window);
    let bytes = messages * size;
    Ok(Phase {
        result: SizeResult {
            size,
            op: op.name(),
            bytes,
            messages,
            seconds: secs,
            bandwidth_bps: bytes as f64 / secs,
            messages_per_s: messages as f64 / secs,
            latency_p50_ns: None,
            latency_p99_ns: None,
            verify: Verify::Off,
            nixl: None,
        },
        moved_in_warmup: u64::from(plan.warmup) * u64::from(plan.window),
    })
}

/// Tag bandwidth as `ucx_perftest -t tag_bw` measures it: a sliding window of sends,
/// the receiver's receives posted ahead. Sent as acknowledged streams (a warm-up
/// one, then streams each sized from the rate so far to a quarter of the time left)
/// so that the phase still ends near `duration_per_size` and never leaves the
/// responder waiting for messages that will not come.
fn tag_bandwidth(
    io: &Io,
    plan: &ProbePlan,
    size: u64,
    len: usize,
    lat: (Option<u64>, Option<u64>),
    over: &dyn Fn() -> bool,
) -> Result<Phase, FabricError> {
    let w = u64::from(plan.window);
    let mut inflight: Vec<*mut std::ffi::c_void> = Vec::new();
    let warm = w.saturating_mul(u64::from(plan.warmup)).max(w);
    let res = (|| -> Result<(u64, f64), FabricError> {
        let t0 = Instant::now();
        io.tag_stream(len, warm, plan.window, &mut inflight)?;
        let mut rate = warm as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let total = w.saturating_mul(u64::from(plan.iterations));
        let t = Instant::now();
        let mut sent = 0u64;
        while sent < total && t.elapsed() < plan.duration_per_size && !over() {
            let left = plan.duration_per_size.saturating_sub(t.elapsed());
            let n = ((rate * left.as_secs_f64() / 4.0) as u64)
                .max(w)
                .min(total - sent);
            let te = Instant::now();
            io.tag_stream(len, n, plan.window, &mut inflight)?;
            rate = n as f64 / te.elapsed().as_secs_f64().max(1e-9);
            sent += n;
        }
        Ok((sent, t.elapsed().as_secs_f64().max(1e-9)))
    })();
    io.w.abandon(&mut inflight);
    let (messages, secs) = res?;
    let bytes = messages * size;
    Ok(Phase {
        result: SizeResult {
            size,
            op: Op::Tag.name(),
            bytes,
            messages,
            seconds: secs,
            bandwidth_bps: bytes as f64 / secs,
            messages_per_s: messages as f64 / secs,
            latency_p50_ns: lat.0,
            latency_p99_ns: lat.1,
            verify: Verify::Off,
            nixl: None,
        },
        moved_in_warmup: warm,
    })
}

pub(super) fn respond(
    e: &mut UcxEndpoint,
    plan: &ProbePlan,
    cancel: &dyn Fn() -> bool,
) -> Result<(), FabricError> {
    plan.validate()?;
    if e.ep.is_null() {
        return Err(FabricError::BadPeer("run_responder before connect".into()));
    }
    let limit = plan.max_duration + plan.peer_timeout;
    let start = Instant::now();
    let io = Io::new(e, plan, cancel);
    let buf_len = e.buf.len() as u64;
    loop {
        if start.elapsed() > limit {
            return Err(FabricError::Timeout(
                limit,
                "the driver to finish (max_duration)",
            ));
        }
        let c = io.recv_ctrl("a control message from the driver")?;
        let check = |c: &Ctrl| -> Result<usize, FabricError> {
            if c.size > buf_len || c.count > u64::from(u32::MAX) {
                return Err(FabricError::BadPeer(format!(
                    "control {c:?} exceeds the plan"
                )));
            }
            Ok(c.size as usize)
        };
        match c.cmd {
            PINGPONG => {
                let len = check(&c)?;
                for _ in 0..c.count {
                    let r = io.recv(io.data_ptr(), len, TAG_DATA)?;
                    io.w.wait_one(r, "a ping from the driver")?;
                    let r = io.send(io.data_ptr(), len, TAG_DATA)?;
                    io.w.wait_one(r, "pong send completion")?;
                }
            }
            STREAM => {
                let len = check(&c)?;
                io.recv_stream(len, c.count)?;
            }
            RMA_DONE => {}
            VERIFY_PREP | VERIFY_CHECK => io.verify_serve(c, plan.corrupt_received_byte)?,
            BYE => {
                io.send_ctrl(Ctrl {
                    cmd: ACK,
                    size: 0,
                    count: 0,
                })?;
                // Let the ack leave before the caller may tear the endpoint down.
                let _ = io.flush();
                return Ok(());
            }
            other => {
                return Err(FabricError::BadPeer(format!(
                    "unknown control command {other}"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(pct(&v, 50), Some(50));
        assert_eq!(pct(&v, 99), Some(99));
        assert_eq!(pct(&[], 50), None);
    }
}
