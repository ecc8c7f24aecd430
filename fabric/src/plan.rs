//! The probe plan both sides run, its validation (absurd parameters are refused with
//! a message naming the parameter), and per-size results.

use std::time::Duration;

/// Largest message a probe may use (1 GiB): bigger is refused.
pub const MAX_MESSAGE_BYTES: u64 = 1 << 30;
/// Largest total a probe may move across all sizes and ops.
pub const MAX_TOTAL_BYTES: u64 = 256 << 30;
/// Longest a probe may run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Deepest window.
pub const MAX_WINDOW: u32 = 1024;

/// Where the buffers live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemKind {
    #[default]
    Host,
    /// GPU memory through the CUDA driver API (`cuMemAlloc`), on this GPU index.
    Cuda(u32),
}

impl std::fmt::Display for MemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemKind::Host => f.write_str("host"),
            MemKind::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Two-sided tagged send/recv, windowed (bandwidth) and ping-pong (latency).
    Tag,
    /// One-sided RMA write into the responder's registered buffer.
    RmaWrite,
    /// One-sided RMA read from the responder's registered buffer.
    RmaRead,
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Tag => "tag",
            Op::RmaWrite => "rma_write",
            Op::RmaRead => "rma_read",
        }
    }

    /// Its number in the transports' control messages.
    pub(crate) fn code(self) -> u64 {
        match self {
            Op::Tag => 0,
            Op::RmaWrite => 1,
            Op::RmaRead => 2,
        }
    }

    pub(crate) fn from_code(c: u64) -> Option<Op> {
        [Op::Tag, Op::RmaWrite, Op::RmaRead]
            .into_iter()
            .find(|o| o.code() == c)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("parameter `{param}`: {why}")]
    Invalid { param: &'static str, why: String },
}

fn invalid(param: &'static str, why: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        param,
        why: why.into(),
    }
}

/// What both sides run. Sizes in bytes, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePlan {
    pub sizes: Vec<u64>,
    pub ops: Vec<Op>,
    /// Messages in flight in the bandwidth phase.
    pub window: u32,
    /// Bandwidth-phase iterations (windows) per size; the phase also stops at
    /// `duration_per_size`, whichever comes first.
    pub iterations: u32,
    /// Ping-pong round trips per size for latency (0 = skip latency).
    pub latency_iterations: u32,
    /// Warm-up iterations per size, not measured.
    pub warmup: u32,
    pub duration_per_size: Duration,
    /// Whole-probe limit.
    pub max_duration: Duration,
    /// How long a side waits for its peer before calling it gone.
    pub peer_timeout: Duration,
    /// The driver's buffer memory (and the responder's unless `responder_mem`).
    pub mem: MemKind,
    /// The responder's buffer memory when it differs from the driver's (GPU → host
    /// over cuda_copy); None: the same as `mem`.
    pub responder_mem: Option<MemKind>,
    /// Check the received contents after each size and op (not timed).
    pub verify: bool,
    /// Test hook, never on the wire: the side that checks the contents flips the
    /// received byte at this offset first, so that a test sees a mismatch.
    #[doc(hidden)]
    pub corrupt_received_byte: Option<u64>,
    /// Host memory: write every page of the payload buffers before the probe, so
    /// that the bytes moved are real memory (true, what the agent's probes do).
    /// False leaves fresh anonymous pages, as `ucx_perftest` allocates them: on
    /// kernel-copy transports (tcp, shm) a sender then reads the kernel's zero
    /// page, which is cheaper than a real KV cache (bench/fabric, like for like).
    pub touch_payload: bool,
}

impl Default for ProbePlan {
    fn default() -> Self {
        ProbePlan {
            sizes: default_sizes(),
            ops: vec![Op::Tag],
            window: 16,
            iterations: 50,
            latency_iterations: 200,
            warmup: 2,
            duration_per_size: Duration::from_secs(2),
            max_duration: Duration::from_secs(120),
            peer_timeout: Duration::from_secs(10),
            mem: MemKind::Host,
            responder_mem: None,
            verify: false,
            corrupt_received_byte: None,
            touch_payload: true,
        }
    }
}

/// 4 KiB … 64 MiB in powers of 4.
pub fn default_sizes() -> Vec<u64> {
    let mut v = Vec::new();
    let mut s = 4u64 << 10;
    while s <= 64 << 20 {
        v.push(s);
        s *= 4;
    }
    v
}

impl ProbePlan {
    /// The plan as the responder runs it: its own memory in `mem`.
    pub fn for_responder(&self) -> ProbePlan {
        let mem = self.responder_mem.unwrap_or(self.mem);
        ProbePlan {
            mem,
            responder_mem: Some(mem),
            ..self.clone()
        }
    }

    /// Whether either side's buffer is GPU memory (verification is on by default).
    pub fn uses_gpu(&self) -> bool {
        matches!(self.mem, MemKind::Cuda(_)) || matches!(self.responder_mem, Some(MemKind::Cuda(_)))
    }

    /// "host", "cuda:0", or "cuda:0→host" when the responder's memory differs.
    pub fn memory_label(&self) -> String {
        match self.responder_mem {
            Some(r) if r != self.mem => format!("{}→{r}", self.mem),
            _ => self.mem.to_string(),
        }
    }

    /// Refuses absurd parameters, naming the parameter.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.sizes.is_empty() {
            return Err(invalid("sizes", "no message size given"));
        }
        for &s in &self.sizes {
            if s == 0 {
                return Err(invalid("sizes", "a 0-byte message measures nothing"));
            }
            if s > MAX_MESSAGE_BYTES {
                return Err(invalid(
                    "sizes",
                    format!("{s} bytes is above the {MAX_MESSAGE_BYTES}-byte limit"),
                ));
            }
        }
        if self.ops.is_empty() {
            return Err(invalid("ops", "no operation given"));
        }
        if self.window == 0 || self.window > MAX_WINDOW {
            return Err(invalid("window", format!("must be 1..={MAX_WINDOW}")));
        }
        if self.iterations == 0 {
            return Err(invalid("iterations", "must be at least 1"));
        }
        if self.duration_per_size.is_zero() {
            return Err(invalid("duration_per_size", "must be positive"));
        }
        if self.max_duration.is_zero() || self.max_duration > MAX_DURATION {
            return Err(invalid(
                "max_duration",
                format!("must be positive and at most {}s", MAX_DURATION.as_secs()),
            ));
        }
        if self.peer_timeout.is_zero() {
            return Err(invalid("peer_timeout", "must be positive"));
        }
        let per_size = u64::from(self.window)
            .saturating_mul(u64::from(self.iterations) + u64::from(self.warmup));
        let total: u64 = self
            .sizes
            .iter()
            .map(|s| s.saturating_mul(per_size))
            .fold(0u64, |a, b| a.saturating_add(b))
            .saturating_mul(self.ops.len() as u64);
        if total > MAX_TOTAL_BYTES {
            return Err(invalid(
                "iterations",
                format!(
                    "the plan would move {total} bytes, above the {MAX_TOTAL_BYTES}-byte limit"
                ),
            ));
        }
        Ok(())
    }

    /// The buffer each side registers: the largest size. Every message of a window
    /// is sent from (and received into) the same buffer, as ucx_perftest and
    /// fabtests do: the bytes still cross the fabric; with `verify` the last
    /// message's contents are checked after each phase.
    pub fn buffer_bytes(&self) -> u64 {
        self.sizes.iter().copied().max().unwrap_or(0)
    }
}

/// One (size, op) measurement, from the driver's clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SizeResult {
    pub size: u64,
    pub op: &'static str,
    /// Bytes moved in the measured bandwidth phase.
    pub bytes: u64,
    pub messages: u64,
    pub seconds: f64,
    /// Bytes per second (SI; divide by 1e9 for GB/s).
    pub bandwidth_bps: f64,
    pub messages_per_s: f64,
    /// Half round trip of the ping-pong phase, ns. None when not measured (RMA).
    pub latency_p50_ns: Option<u64>,
    pub latency_p99_ns: Option<u64>,
    /// NIXL-level probes: the per-transfer timing columns nixlbench reports.
    pub nixl: Option<XferStats>,
    /// Whether the received contents were checked after the phase.
    pub verify: Verify,
}

/// The contents check of one (size, op). A mismatch is an error, not a verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verify {
    /// Not asked for.
    #[default]
    Off,
    /// The receiving side holds exactly the sender's bytes.
    Verified,
    /// Asked for but not possible here; the reason.
    Unverified(String),
}

/// Average and 99th percentile of a per-transfer time, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AvgP99 {
    pub avg_us: f64,
    pub p99_us: f64,
}

/// One NIXL transfer's shape and times: a transfer is `blocks` descriptors of
/// `block_size` bytes; prepare = request creation, post = the post call, transfer =
/// from post until NIXL says done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct XferStats {
    pub blocks: u64,
    pub block_size: u64,
    pub iterations: u64,
    pub prepare: AvgP99,
    pub post: AvgP99,
    pub transfer: AvgP99,
    /// Once per size: preparing both descriptor lists (vLLM does it at connect).
    pub dlist_prep_us: f64,
    /// The receiving side checked the contents.
    pub verified: bool,
}

/// What carried the bytes, as the library reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportTruth {
    /// "libfabric" or "ucx".
    pub library: String,
    /// Library file loaded and its version.
    pub path: String,
    pub version: String,
    /// libfabric: provider / fabric / domain names. UCX: empty.
    pub provider: String,
    pub fabric: String,
    pub domain: String,
    /// UCX: "transport/device" per lane (ucp_ep_query or parsed ucp_ep_print_info).
    pub lanes: Vec<String>,
    /// Whether RMA is native, emulated, or not offered (free text from the library).
    pub rma: String,
    /// Memory kind actually used ("host", "cuda:0").
    pub memory: String,
    pub notes: Vec<String>,
    /// NIXL-level probes: the NIXL package and version, and the Python that ran it.
    pub nixl_version: String,
    /// UCX: the protocol UCX selected per operation and memory type (evidence lines).
    pub protocols: Vec<String>,
    /// What is wrong with the path, with evidence and fix; empty when healthy.
    pub findings: Vec<Finding>,
}

/// A problem the transport truth proves, e.g. RMA emulated over tcp.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finding {
    pub name: String,
    pub evidence: Vec<String>,
    pub fix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_is_valid_and_sizes_span_4k_to_64m() {
        let p = ProbePlan::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.sizes.first(), Some(&4096));
        assert_eq!(p.sizes.last(), Some(&(64 << 20)));
    }

    #[test]
    fn absurd_parameters_name_the_parameter() {
        let cases: Vec<(ProbePlan, &str)> = vec![
            (
                ProbePlan {
                    sizes: vec![0],
                    ..Default::default()
                },
                "sizes",
            ),
            (
                ProbePlan {
                    sizes: vec![1 << 40],
                    ..Default::default()
                },
                "sizes",
            ),
            (
                ProbePlan {
                    window: 0,
                    ..Default::default()
                },
                "window",
            ),
            (
                ProbePlan {
                    iterations: 0,
                    ..Default::default()
                },
                "iterations",
            ),
            (
                ProbePlan {
                    max_duration: Duration::ZERO,
                    ..Default::default()
                },
                "max_duration",
            ),
            (
                ProbePlan {
                    max_duration: Duration::from_secs(1 << 20),
                    ..Default::default()
                },
                "max_duration",
            ),
            (
                ProbePlan {
                    ops: vec![],
                    ..Default::default()
                },
                "ops",
            ),
            (
                ProbePlan {
                    iterations: u32::MAX,
                    ..Default::default()
                },
                "iterations",
            ),
        ];
        for (p, name) in cases {
            match p.validate() {
                Err(PlanError::Invalid { param, .. }) => assert_eq!(param, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
