//! The responding side of the in-band protocol (see `proto`): serves the phases
//! the driver announces until `Bye`.

use super::endpoint::LibfabricEndpoint;
use super::progress::{TxKind, Wait};
use super::proto::{
    digest, expect_kind, usize_of, Ctrl, Kind, LATENCY, RMA_READ, RMA_WRITE, TAG_BW,
};
use crate::error::FabricError;
use crate::plan::ProbePlan;

impl LibfabricEndpoint {
    pub(super) fn respond(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<(), FabricError> {
        self.check_plan(plan, false)?;
        let w = Wait {
            what: "the driver",
            timeout: plan.peer_timeout,
            cancel,
        };
        let hello = expect_kind(self.recv_ctrl(&w)?, Kind::Hello)?;
        let ok = hello.a == digest(plan);
        self.send_ctrl(
            &Ctrl::new(Kind::HelloAck, digest(plan), ok.into(), 0).encode(),
            &w,
        )?;
        if !ok {
            return Err(FabricError::BadPeer(
                "the driver runs a different plan".into(),
            ));
        }
        let have = self.data.as_ref().map_or(0, |d| d.len() as u64);
        let win = u64::from(plan.window);
        loop {
            let m = Ctrl::decode(&self.recv_ctrl(&w)?)?;
            match m.kind {
                Kind::Bye => {
                    return self.send_ctrl(&Ctrl::new(Kind::ByeAck, 0, 0, 0).encode(), &w);
                }
                Kind::Phase => {}
                Kind::Prep | Kind::Check => {
                    self.verify_serve(m, plan.corrupt_received_byte, &w)?;
                    continue;
                }
                k => return Err(FabricError::BadPeer(format!("unexpected {k:?}"))),
            }
            let si = (m.a >> 8) as usize;
            if self.silent_after_sizes.is_some_and(|n| si >= n) {
                return Ok(());
            }
            if m.b > have {
                return Err(FabricError::BadPeer(format!(
                    "{}-byte phase over a {have}-byte buffer",
                    m.b
                )));
            }
            let size = usize_of(m.b)?;
            let ready = Ctrl::new(Kind::Ready, 0, 0, 0).encode();
            match m.a & 0xff {
                LATENCY => {
                    self.post_data_recv(size, &w)?;
                    self.send_ctrl(&ready, &w)?;
                    for i in 0..m.c {
                        let (target, zero) = (self.cnt.rx_posted, self.cnt.rx_zero);
                        self.wait(&w, |c| c.rx_done >= target)?;
                        if self.cnt.rx_zero > zero {
                            break; // the driver ran out of time
                        }
                        if i + 1 < m.c {
                            self.post_data_recv(size, &w)?;
                        }
                        let tx = self.cnt.tx_done;
                        self.post_data_tx(TxKind::Send, size, &w)?;
                        self.wait(&w, |c| c.tx_done > tx)?;
                    }
                }
                TAG_BW => {
                    for _ in 0..win {
                        self.post_data_recv(size, &w)?;
                    }
                    self.send_ctrl(&ready, &w)?;
                    loop {
                        let (target, zero) = (self.cnt.rx_posted, self.cnt.rx_zero);
                        self.wait(&w, |c| c.rx_done >= target)?;
                        if self.cnt.rx_zero > zero {
                            break;
                        }
                        for _ in 0..win {
                            self.post_data_recv(size, &w)?;
                        }
                        self.send_ctrl(&Ctrl::new(Kind::Ack, 0, 0, 0).encode(), &w)?;
                    }
                }
                RMA_WRITE | RMA_READ => {
                    self.send_ctrl(&ready, &w)?;
                    // One-sided: nothing completes here until `Done`; allow the phase.
                    let long = Wait {
                        what: "the driver's RMA phase",
                        timeout: plan.duration_per_size + 2 * plan.peer_timeout,
                        cancel,
                    };
                    expect_kind(self.recv_ctrl(&long)?, Kind::Done)?;
                    self.send_ctrl(&Ctrl::new(Kind::DoneAck, 0, 0, 0).encode(), &w)?;
                }
                k => return Err(FabricError::BadPeer(format!("unknown phase {k}"))),
            }
        }
    }
}
