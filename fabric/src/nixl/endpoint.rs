//! `ProbeEndpoint` over NIXL: each agent supervises one driver child that runs the
//! engine's own NIXL. The responder is the NIXL target (registers its region, serves
//! notifications, checks what was written and prepares what is read); the driver is
//! the initiator (WRITE pushes, READ pulls as a decode side does). What travels out
//! of band: address = the NIXL agent metadata, rma = the packed region descriptor.

use std::time::{Duration, Instant};

use serde_json::json;

use super::child::{DriverChild, Spawn};
use super::lanes;
use super::python::{Python, PythonChoice};
use super::reply::{self, Hello};
use crate::endpoint::{PeerInfo, ProbeEndpoint};
use crate::error::FabricError;
use crate::plan::{MemKind, Op, PlanError, ProbePlan, SizeResult, TransportTruth};

/// How a NIXL probe runs on this side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NixlOptions {
    /// NIXL backend: UCX (default) or LIBFABRIC.
    pub backend: String,
    pub python: PythonChoice,
    /// Bytes per descriptor; 0: each transfer is one descriptor.
    pub block_size: u64,
    /// Environment for the driver only (UCX_TLS, UCX_NET_DEVICES, FI_PROVIDER).
    pub env: Vec<(String, String)>,
}

/// Shortest wait for the driver's start (importing NIXL, loading plugins).
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct NixlEndpoint {
    child: DriverChild,
    backend: String,
    block_size: u64,
    python: Python,
    hello: Hello,
    memory: String,
    local: PeerInfo,
    peer: Option<PeerInfo>,
    connected: bool,
    served: bool,
    sizes_total: usize,
    sizes_done: usize,
    peer_timeout: Duration,
    truth: TransportTruth,
}

fn mem_name(m: MemKind) -> String {
    match m {
        MemKind::Host => "host".into(),
        MemKind::Cuda(i) => format!("cuda:{i}"),
    }
}

fn never() -> bool {
    false
}

impl NixlEndpoint {
    /// Starts the driver with the engine's Python, checks the backend, allocates and
    /// registers this side's region (the plan's largest size, once).
    pub fn open(opts: &NixlOptions, plan: &ProbePlan) -> Result<Self, FabricError> {
        plan.validate()?;
        let backend = match opts.backend.to_ascii_uppercase().as_str() {
            "" | "UCX" => "UCX".to_string(),
            "LIBFABRIC" => "LIBFABRIC".to_string(),
            other => {
                return Err(FabricError::Unsupported(format!(
                    "NIXL backend `{other}` (UCX or LIBFABRIC)"
                )))
            }
        };
        let python = opts.python.resolve()?;
        let mut env = opts.env.clone();
        if backend == "UCX" && !env.iter().any(|(k, _)| k == "UCX_PROTO_INFO") {
            env.push(("UCX_PROTO_INFO".into(), "y".into()));
        }
        let peer_timeout = plan.peer_timeout.max(Duration::from_secs(30));
        let spawn = Spawn {
            python: python.path.clone(),
            env,
            max_bytes: plan.buffer_bytes(),
            timeout: peer_timeout,
        };
        let (mut child, hello) =
            super::start(&python, spawn, START_TIMEOUT.max(plan.peer_timeout))?;
        hello.require_backend(&backend)?;
        let memory = mem_name(plan.mem);
        let bytes = plan.buffer_bytes();
        let init = child.request(
            json!({"cmd": "init", "backend": backend, "mem": memory, "bytes": bytes,
                   "block_size": bytes}),
            Instant::now() + START_TIMEOUT.max(plan.peer_timeout),
            &never,
            &mut |_| {},
        )?;
        let text = |k: &str| init[k].as_str().unwrap_or_default().as_bytes().to_vec();
        let local = PeerInfo {
            address: text("metadata"),
            rma: text("descs"),
        };
        let mut me = NixlEndpoint {
            child,
            backend,
            block_size: opts.block_size,
            python,
            hello,
            memory,
            local,
            peer: None,
            connected: false,
            served: false,
            sizes_total: plan.sizes.len(),
            sizes_done: 0,
            peer_timeout,
            truth: TransportTruth::default(),
        };
        me.refresh_truth();
        Ok(me)
    }

    /// The NIXL connect, once the role is known (at the first run).
    fn ensure_connected(&mut self, role: &str) -> Result<(), FabricError> {
        if self.connected {
            return Ok(());
        }
        let peer = self
            .peer
            .clone()
            .ok_or_else(|| FabricError::BadPeer("run before connect".into()))?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        self.child.request(
            json!({"cmd": "connect", "role": role, "peer_metadata": text(&peer.address),
                   "peer_descs": text(&peer.rma)}),
            Instant::now() + self.peer_timeout,
            &never,
            &mut |_| {},
        )?;
        self.connected = true;
        Ok(())
    }

    fn blocks(&self, size: u64) -> Result<u64, FabricError> {
        if self.block_size == 0 {
            return Ok(1);
        }
        if !size.is_multiple_of(self.block_size) {
            return Err(PlanError::Invalid {
                param: "block_size",
                why: format!(
                    "size {size} is not a whole number of {}-byte blocks",
                    self.block_size
                ),
            }
            .into());
        }
        Ok(size / self.block_size)
    }

    /// Fills the transport truth from `hello` and the protocol tables UCX printed.
    fn refresh_truth(&mut self) {
        let h = &self.hello;
        let mems = crate::ucx::findings::mem_types(&self.memory);
        let proto = lanes::from_stderr(&self.child.stderr(), &mems);
        let mut notes = vec![format!(
            "python: {} ({}), Python {}",
            self.python.path.display(),
            self.python.how,
            h.python_version
        )];
        notes.extend(proto.evidence.iter().cloned());
        if !h.ucx_error.is_empty() {
            notes.push(format!("UCX: {}", h.ucx_error));
        }
        self.truth = TransportTruth {
            library: format!("nixl:{}", self.backend),
            path: if self.backend == "UCX" {
                h.ucx_path.clone()
            } else {
                h.libs
                    .iter()
                    .find(|l| l.contains("libfabric"))
                    .cloned()
                    .unwrap_or_default()
            },
            version: h.ucx_version.clone(),
            lanes: proto.lanes,
            rma: proto.rma,
            memory: self.memory.clone(),
            notes,
            nixl_version: h.describe(),
            findings: proto.findings,
            ..Default::default()
        };
    }

    /// The driver's stderr (NIXL and UCX output), head and tail.
    pub fn driver_stderr(&self) -> String {
        self.child.stderr()
    }
}

impl ProbeEndpoint for NixlEndpoint {
    fn local_info(&self) -> PeerInfo {
        self.local.clone()
    }

    fn connect(&mut self, peer: &PeerInfo) -> Result<(), FabricError> {
        if peer.address.is_empty() || peer.rma.is_empty() {
            return Err(FabricError::BadPeer(
                "a NIXL peer publishes its agent metadata and region descriptor".into(),
            ));
        }
        self.peer = Some(peer.clone());
        Ok(())
    }

    fn run_driver(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<SizeResult>, FabricError> {
        self.ensure_connected("initiator")?;
        let deadline = Instant::now() + plan.max_duration;
        let mut out = Vec::new();
        for &size in &plan.sizes {
            let blocks = self.blocks(size)?;
            for op in &plan.ops {
                let name = match op {
                    Op::RmaWrite => "WRITE",
                    Op::RmaRead => "READ",
                    Op::Tag => {
                        return Err(FabricError::Unsupported(
                            "tag: a NIXL probe measures WRITE and READ (--ops write,read)".into(),
                        ))
                    }
                };
                let r = self.child.request(
                    json!({"cmd": "run", "op": name, "size": size, "blocks": blocks,
                           "iters": plan.iterations, "warmup": plan.warmup, "verify": true}),
                    deadline,
                    cancel,
                    &mut |_| {},
                );
                self.refresh_truth();
                out.push(reply::size_result(&r?)?);
            }
        }
        self.sizes_done += plan.sizes.len();
        if self.sizes_done >= self.sizes_total {
            self.child.request(
                json!({"cmd": "finish"}),
                Instant::now() + self.peer_timeout,
                cancel,
                &mut |_| {},
            )?;
        }
        Ok(out)
    }

    fn run_responder(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<(), FabricError> {
        // One serve covers every size: the initiator says when it is done.
        if self.served {
            return Ok(());
        }
        self.ensure_connected("target")?;
        let idle = plan.max_duration.as_secs_f64().max(1.0);
        let r = self.child.request(
            json!({"cmd": "serve", "idle_timeout_s": idle}),
            Instant::now() + plan.max_duration + Duration::from_secs(5),
            cancel,
            &mut |_| {},
        );
        self.served = true;
        self.refresh_truth();
        let summary = r?;
        match summary["mismatches"].as_u64() {
            Some(n) if n > 0 => Err(FabricError::Nixl {
                cmd: "serve".into(),
                kind: "verify".into(),
                message: format!("{n} WRITE(s) arrived with contents that differ"),
            }),
            _ => Ok(()),
        }
    }

    fn truth(&self) -> TransportTruth {
        self.truth.clone()
    }
}
