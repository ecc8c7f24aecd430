//! Clock offset of an agent relative to the coordinator, from repeated NTP-style
//! four-timestamp pings. Keeps the lowest-RTT exchanges (least queueing), takes
//! their median offset, and states an error bound.

use servescope_proto::v1::PingRequest;

use crate::orchestration::connect::AgentClient;
use crate::store::Offset;

/// One exchange: t1 coordinator send, t2 agent receive, t3 agent send, t4
/// coordinator receive (each on its own clock, ns since the epoch).
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub t1: u64,
    pub t2: u64,
    pub t3: u64,
    pub t4: u64,
}

impl Exchange {
    /// Agent clock minus coordinator clock.
    pub fn offset_ns(&self) -> i64 {
        let a = self.t2 as i128 - self.t1 as i128;
        let b = self.t3 as i128 - self.t4 as i128;
        ((a + b) / 2) as i64
    }

    /// Round trip minus the agent's processing time.
    pub fn rtt_ns(&self) -> i64 {
        let total = self.t4 as i128 - self.t1 as i128;
        let agent = self.t3 as i128 - self.t2 as i128;
        (total - agent).max(0) as i64
    }
}

/// Estimates from exchanges; None when there are none.
pub fn estimate(ex: &[Exchange]) -> Option<Offset> {
    if ex.is_empty() {
        return None;
    }
    let mut v: Vec<(i64, i64)> = ex.iter().map(|e| (e.rtt_ns(), e.offset_ns())).collect();
    v.sort_unstable();
    let keep = (v.len() / 4).max(1);
    let best = &v[..keep];
    let mut offs: Vec<i64> = best.iter().map(|(_, o)| *o).collect();
    offs.sort_unstable();
    let median = offs[offs.len() / 2];
    let min_rtt = best[0].0;
    let spread = offs.iter().map(|o| (o - median).abs()).max().unwrap_or(0);
    Some(Offset {
        offset_ns: median,
        // Each exchange bounds the offset to ±rtt/2 around its estimate.
        error_ns: min_rtt / 2 + spread,
        rtt_ns: min_rtt,
        exchanges: ex.len(),
    })
}

/// Runs `n` pings against the agent and estimates its offset.
pub async fn measure(client: &mut AgentClient, n: usize) -> Result<Offset, tonic::Status> {
    let mut ex = Vec::with_capacity(n);
    for _ in 0..n {
        let t1 = servescope_proto::now_ns();
        let r = client
            .ping(PingRequest { client_send_ns: t1 })
            .await?
            .into_inner();
        let t4 = servescope_proto::now_ns();
        if r.client_send_ns != t1 {
            return Err(tonic::Status::data_loss(
                "ping reply does not echo our timestamp",
            ));
        }
        ex.push(Exchange {
            t1,
            t2: r.agent_recv_ns,
            t3: r.agent_send_ns,
            t4,
        });
    }
    estimate(&ex).ok_or_else(|| tonic::Status::invalid_argument("no pings made"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_offset_and_prefers_low_rtt() {
        // Agent clock is 5 ms ahead. Symmetric 100 µs paths, plus queued outliers
        // with asymmetric delay that would bias a plain mean.
        let off = 5_000_000u64;
        let mut ex = Vec::new();
        for i in 0..40u64 {
            let t1 = 1_000_000_000 + i * 10_000_000;
            let (up, down) = if i % 3 == 0 {
                (4_000_000, 100_000)
            } else {
                (100_000, 100_000)
            };
            let t2 = t1 + up + off;
            let t3 = t2 + 20_000;
            let t4 = t3 - off + down;
            ex.push(Exchange { t1, t2, t3, t4 });
        }
        let o = estimate(&ex).unwrap();
        assert_eq!(o.offset_ns, 5_000_000);
        assert_eq!(o.rtt_ns, 200_000);
        assert!(o.error_ns >= 100_000 && o.error_ns < 200_000, "{o:?}");
        assert!(estimate(&[]).is_none());
    }
}
