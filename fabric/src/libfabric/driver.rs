//! The driving side of the in-band protocol (see `proto`): per size, latency
//! ping-pong, then windowed bandwidth per op, timed on this side's clock.

use std::time::{Duration, Instant};

use super::endpoint::LibfabricEndpoint;
use super::progress::{TxKind, Wait};
use super::proto::{
    digest, expect_kind, usize_of, Ctrl, Kind, LATENCY, RMA_READ, RMA_WRITE, TAG_BW,
};
use crate::error::FabricError;
use crate::plan::{Op, ProbePlan, SizeResult, Verify};
use crate::stats::percentile;

impl LibfabricEndpoint {
    fn phase(
        &mut self,
        kind: u64,
        si: usize,
        size: u64,
        count: u64,
        w: &Wait<'_>,
    ) -> Result<(), FabricError> {
        let a = kind | ((si as u64) << 8);
        self.send_ctrl(&Ctrl::new(Kind::Phase, a, size, count).encode(), w)?;
        expect_kind(self.recv_ctrl(w)?, Kind::Ready).map(|_| ())
    }

    fn latency(
        &mut self,
        plan: &ProbePlan,
        si: usize,
        size: usize,
        deadline: Instant,
        w: &Wait<'_>,
    ) -> Result<(Option<u64>, Option<u64>), FabricError> {
        if plan.latency_iterations == 0 {
            return Ok((None, None));
        }
        let count = u64::from(plan.warmup) + u64::from(plan.latency_iterations);
        self.phase(LATENCY, si, size as u64, count, w)?;
        let mut samples = Vec::with_capacity(plan.latency_iterations.min(1 << 16) as usize);
        for i in 0..count {
            if Instant::now() >= deadline {
                // Out of time: an empty ping tells the responder the phase is over.
                let tx = self.cnt.tx_done;
                self.post_data_tx(TxKind::Send, 0, w)?;
                self.wait(w, |c| c.tx_done > tx)?;
                break;
            }
            let (rx, tx) = (self.cnt.rx_done, self.cnt.tx_done);
            let t0 = Instant::now();
            self.post_data_recv(size, w)?;
            self.post_data_tx(TxKind::Send, size, w)?;
            self.wait(w, |c| c.rx_done > rx && c.tx_done > tx)?;
            if i >= u64::from(plan.warmup) {
                samples.push((t0.elapsed().as_nanos() / 2) as u64);
            }
        }
        samples.sort_unstable();
        Ok((percentile(&samples, 50.0), percentile(&samples, 99.0)))
    }

    /// Windows of sends (tag) or one-sided ops; returns (bytes, messages, seconds)
    /// measured and the messages moved including warm-up.
    fn windows(
        &mut self,
        plan: &ProbePlan,
        kind: TxKind,
        size: usize,
        deadline: Instant,
        w: &Wait<'_>,
    ) -> Result<(u64, u64, f64, u64), FabricError> {
        let win = u64::from(plan.window);
        let (mut done, mut measured) = (0u32, 0u64);
        let mut t_start: Option<Instant> = None;
        let mut t_end = Instant::now();
        loop {
            if t_start.is_none() && done >= plan.warmup {
                t_start = Some(Instant::now());
            }
            let elapsed = t_start.map_or(Duration::ZERO, |t| t.elapsed());
            let stop = measured >= u64::from(plan.iterations)
                || Instant::now() >= deadline
                || (measured > 0 && elapsed >= plan.duration_per_size);
            if stop {
                break;
            }
            let tx = self.cnt.tx_done;
            for _ in 0..win {
                self.post_data_tx(kind, size, w)?;
            }
            self.wait(w, |c| c.tx_done >= tx + win)?;
            if kind == TxKind::Send {
                expect_kind(self.recv_ctrl(w)?, Kind::Ack)?;
            }
            done += 1;
            if done > plan.warmup {
                measured += 1;
                t_end = Instant::now();
            }
        }
        let secs = t_start.map_or(0.0, |t| t_end.saturating_duration_since(t).as_secs_f64());
        let moved = u64::from(done) * win;
        Ok((measured * win * size as u64, measured * win, secs, moved))
    }

    pub(super) fn drive(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<SizeResult>, FabricError> {
        self.check_plan(plan, true)?;
        let w = Wait {
            what: "the responder",
            timeout: plan.peer_timeout,
            cancel,
        };
        let d = digest(plan);
        self.send_ctrl(
            &Ctrl::new(Kind::Hello, d, plan.buffer_bytes(), 0).encode(),
            &w,
        )?;
        let ack = expect_kind(self.recv_ctrl(&w)?, Kind::HelloAck)?;
        if ack.a != d || ack.b != 1 {
            return Err(FabricError::BadPeer(
                "the responder runs a different plan".into(),
            ));
        }
        let deadline = Instant::now() + plan.max_duration;
        let mut out = Vec::new();
        let mut body = || -> Result<(), FabricError> {
            'sizes: for (si, &size) in plan.sizes.iter().enumerate() {
                let len = usize_of(size)?;
                for op in &plan.ops {
                    if Instant::now() >= deadline {
                        break 'sizes;
                    }
                    let (mut p50, mut p99) = (None, None);
                    let (bytes, msgs, secs, moved) = match op {
                        Op::Tag => {
                            (p50, p99) = self.latency(plan, si, len, deadline, &w)?;
                            if plan.verify {
                                self.verify_prepare(*op, size, &w)?;
                            }
                            self.phase(TAG_BW, si, size, plan.window.into(), &w)?;
                            let r = self.windows(plan, TxKind::Send, len, deadline, &w)?;
                            // End of phase: empty messages complete the posted receives.
                            let tx = self.cnt.tx_done;
                            for _ in 0..plan.window {
                                self.post_data_tx(TxKind::Send, 0, &w)?;
                            }
                            self.wait(&w, |c| c.tx_done >= tx + u64::from(plan.window))?;
                            r
                        }
                        Op::RmaWrite | Op::RmaRead => {
                            let (pk, tk) = if *op == Op::RmaWrite {
                                (RMA_WRITE, TxKind::Write)
                            } else {
                                (RMA_READ, TxKind::Read)
                            };
                            if plan.verify {
                                self.verify_prepare(*op, size, &w)?;
                            }
                            self.phase(pk, si, size, plan.window.into(), &w)?;
                            let r = self.windows(plan, tk, len, deadline, &w)?;
                            self.send_ctrl(&Ctrl::new(Kind::Done, 0, 0, 0).encode(), &w)?;
                            expect_kind(self.recv_ctrl(&w)?, Kind::DoneAck)?;
                            r
                        }
                    };
                    let verify = if plan.verify {
                        self.verify_finish(*op, size, moved, plan.corrupt_received_byte, &w)?
                    } else {
                        Verify::Off
                    };
                    let rate = |x: u64| if secs > 0.0 { x as f64 / secs } else { 0.0 };
                    out.push(SizeResult {
                        size,
                        op: op.name(),
                        bytes,
                        messages: msgs,
                        seconds: secs,
                        bandwidth_bps: rate(bytes),
                        messages_per_s: rate(msgs),
                        latency_p50_ns: p50,
                        latency_p99_ns: p99,
                        verify,
                        nixl: None,
                    });
                }
            }
            Ok(())
        };
        let res = body();
        // A contents mismatch still ends the session cleanly, then is the answer.
        if let Err(e) = res {
            if matches!(e, FabricError::Mismatch { .. }) {
                let _ = self.bye(&w);
            }
            return Err(e);
        }
        self.bye(&w)?;
        Ok(out)
    }

    fn bye(&mut self, w: &Wait<'_>) -> Result<(), FabricError> {
        self.send_ctrl(&Ctrl::new(Kind::Bye, 0, 0, 0).encode(), w)?;
        expect_kind(self.recv_ctrl(w)?, Kind::ByeAck).map(|_| ())
    }
}
