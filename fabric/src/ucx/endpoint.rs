//! `UcxEndpoint`: one side of a UCX probe. Context (TAG | RMA) with this probe's own
//! UCX_TLS / UCX_NET_DEVICES (a private ucp_config, not the process environment), a
//! single-thread worker, a buffer mapped with ucp_mem_map whose packed rkey is
//! published with the worker address, and an endpoint to the peer with peer error
//! handling. The in-band protocol is in protocol.rs, the `ProbeEndpoint` impl in
//! probe.rs.

use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicI32, Ordering};

use super::capture::Capture;
use super::findings;
use super::lanes;
use super::loader::{ucp_at, Ucp};
use super::mem::Buffer;
use super::proto_info;
use super::sys::*;
use crate::endpoint::PeerInfo;
use crate::error::FabricError;
use crate::plan::{Op, ProbePlan, TransportTruth};

/// Per-probe UCX settings; None keeps UCX's own default (or the process's UCX_* env).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UcxOptions {
    /// UCX_TLS for this probe only, e.g. "tcp", "posix,self", "rc,cuda_copy", "srd".
    pub tls: Option<String>,
    /// UCX_NET_DEVICES for this probe only, e.g. "lo", "mlx5_0:1", "rdmap16s27:1".
    pub net_devices: Option<String>,
    /// The libucp file to load (an engine's bundled UCX); None: the default one.
    pub library: Option<String>,
}

/// The peer's registered buffer, unpacked.
pub(super) struct Remote {
    pub addr: u64,
    pub len: u64,
    pub rkey: ucp_rkey_h,
}

pub struct UcxEndpoint {
    pub(super) ucp: &'static Ucp,
    ctx: ucp_context_h,
    pub(super) worker: ucp_worker_h,
    pub(super) ep: ucp_ep_h,
    mem: ucp_mem_h,
    address: Vec<u8>,
    rkey_packed: Vec<u8>,
    pub(super) remote: Option<Remote>,
    /// Status from the endpoint error handler (0 = none). Boxed: UCX keeps its address.
    pub(super) ep_error: Box<AtomicI32>,
    pub(super) truth: TransportTruth,
    /// The plan's operations, to pick their protocol selection from UCX's tables.
    ops: Vec<Op>,
    /// UCX's log while this endpoint lives (protocol tables); dropped after cleanup.
    capture: Option<Capture>,
    /// Dropped last: UCX may touch it until the worker is destroyed.
    pub(super) buf: Buffer,
}

// SAFETY: the UCX handles are owned exclusively by this value and only used through
// &mut self / &self from one thread at a time (the trait's contract: one thread runs
// a probe); moving them between threads between calls is allowed by UCX's
// single-thread mode, which forbids concurrent, not sequential, use.
unsafe impl Send for UcxEndpoint {}

fn cstring(what: &str, s: &str) -> Result<CString, FabricError> {
    CString::new(s).map_err(|_| FabricError::Unsupported(format!("{what} contains a NUL byte")))
}

impl UcxEndpoint {
    /// Opens context, worker and buffer for `plan` (buffer = its largest size).
    pub fn new(opts: &UcxOptions, plan: &ProbePlan) -> Result<Self, FabricError> {
        plan.validate()?;
        let ucp = ucp_at(opts.library.as_deref())?;
        let buf = Buffer::alloc(plan.mem, plan.buffer_bytes(), plan.touch_payload)?;
        let (capture, capture_note) = match Capture::start(ucp) {
            Ok(c) => (Some(c), None),
            Err(e) => (
                None,
                Some(format!("UCX protocol selection not captured: {e}")),
            ),
        };
        let mut me = UcxEndpoint {
            ucp,
            ctx: std::ptr::null_mut(),
            worker: std::ptr::null_mut(),
            ep: std::ptr::null_mut(),
            mem: std::ptr::null_mut(),
            address: Vec::new(),
            rkey_packed: Vec::new(),
            remote: None,
            ep_error: Box::new(AtomicI32::new(0)),
            truth: TransportTruth {
                library: "ucx".into(),
                path: ucp.path.clone(),
                version: ucp.version.clone(),
                memory: plan.memory_label(),
                notes: capture_note.into_iter().collect(),
                ..Default::default()
            },
            ops: plan.ops.clone(),
            capture,
            buf,
        };
        me.init_context(opts)?;
        me.init_worker()?;
        me.map_buffer()?;
        Ok(me)
    }

    fn init_context(&mut self, opts: &UcxOptions) -> Result<(), FabricError> {
        let ucp = self.ucp;
        let mut cfg: *mut ucp_config_t = std::ptr::null_mut();
        // SAFETY: NULL prefix/file mean defaults + UCX_* env; cfg receives a new config.
        ucp.check("ucp_config_read", unsafe {
            (ucp.config_read)(std::ptr::null(), std::ptr::null(), &mut cfg)
        })?;
        if self.capture.is_some() {
            // SAFETY: cfg is live; both strings are NUL-terminated literals.
            let st = unsafe { (ucp.config_modify)(cfg, c"PROTO_INFO".as_ptr(), c"y".as_ptr()) };
            if st != UCS_OK {
                self.truth.notes.push(format!(
                    "UCX_PROTO_INFO not supported by this UCX: {}",
                    ucp.status_str(st)
                ));
            }
        }
        let mut asked = Vec::new();
        let mut res = Ok(());
        for (name, val) in [("TLS", &opts.tls), ("NET_DEVICES", &opts.net_devices)] {
            let Some(v) = val else { continue };
            asked.push(format!("UCX_{name}={v}"));
            let (n, vv) = match (cstring(name, name), cstring(name, v)) {
                (Ok(n), Ok(vv)) => (n, vv),
                (Err(e), _) | (_, Err(e)) => {
                    res = Err(e);
                    break;
                }
            };
            // SAFETY: cfg is live; both strings are NUL-terminated and outlive the call.
            let st = unsafe { (ucp.config_modify)(cfg, n.as_ptr(), vv.as_ptr()) };
            if st != UCS_OK {
                res = Err(FabricError::Call {
                    call: "ucp_config_modify",
                    code: i64::from(st),
                    message: format!("UCX_{name}={v}: {}", ucp.status_str(st)),
                });
                break;
            }
        }
        if res.is_ok() {
            // SAFETY: ucp_params_t is plain data; zero = no optional fields.
            let mut params: ucp_params_t = unsafe { std::mem::zeroed() };
            params.field_mask = u64::from(UCP_PARAM_FIELD_FEATURES);
            params.features = u64::from(UCP_FEATURE_TAG | UCP_FEATURE_RMA);
            // SAFETY: params and cfg are valid; ctx receives the new context.
            let st = unsafe {
                (ucp.init_version)(UCP_API_MAJOR, UCP_API_MINOR, &params, cfg, &mut self.ctx)
            };
            if st != UCS_OK {
                let with = if asked.is_empty() {
                    "UCX defaults".to_string()
                } else {
                    asked.join(" ")
                };
                res = Err(FabricError::Call {
                    call: "ucp_init_version",
                    code: i64::from(st),
                    message: format!(
                        "{} with {with} (no usable transport/device for this setting)",
                        ucp.status_str(st)
                    ),
                });
            }
        }
        // SAFETY: cfg came from ucp_config_read and is released once, after init.
        unsafe { (ucp.config_release)(cfg) };
        res
    }

    fn init_worker(&mut self) -> Result<(), FabricError> {
        let ucp = self.ucp;
        // SAFETY: plain data; zero = no optional fields.
        let mut wp: ucp_worker_params_t = unsafe { std::mem::zeroed() };
        wp.field_mask = u64::from(UCP_WORKER_PARAM_FIELD_THREAD_MODE);
        wp.thread_mode = UCS_THREAD_MODE_SINGLE;
        // SAFETY: ctx is live; worker receives the new worker.
        ucp.check("ucp_worker_create", unsafe {
            (ucp.worker_create)(self.ctx, &wp, &mut self.worker)
        })?;
        let mut addr: *mut ucp_address_t = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: worker is live; UCX allocates the address, released below.
        ucp.check("ucp_worker_get_address", unsafe {
            (ucp.worker_get_address)(self.worker, &mut addr, &mut len)
        })?;
        // SAFETY: addr points at len bytes owned by UCX until released.
        self.address = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), len) }.to_vec();
        // SAFETY: addr came from ucp_worker_get_address of this worker.
        unsafe { (ucp.worker_release_address)(self.worker, addr) };
        Ok(())
    }

    /// Refuses GPU memory up front, with the reason, when this UCX lacks CUDA support.
    fn check_memory_type(&self) -> Result<(), FabricError> {
        let ucp = self.ucp;
        let mt = self.buf.memory_type();
        if mt == UCS_MEMORY_TYPE_HOST {
            return Ok(());
        }
        // SAFETY: plain data; zero = no fields.
        let mut attr: ucp_context_attr_t = unsafe { std::mem::zeroed() };
        attr.field_mask = u64::from(UCP_ATTR_FIELD_MEMORY_TYPES);
        // SAFETY: ctx is live; attr is writable and its mask names one field.
        let st = unsafe { (ucp.context_query)(self.ctx, &mut attr) };
        if st == UCS_OK && attr.memory_types & (1u64 << mt) == 0 {
            let cands = crate::engine_libs::cuda_capable_ucx(std::path::Path::new("/proc"));
            let hint = if cands.is_empty() {
                "; no UCX with a CUDA transport found on this node (serving processes' \
                 mapped libraries, NIXL wheels in site-packages)"
                    .to_string()
            } else {
                format!(
                    "; UCX with a CUDA transport on this node: {} (use --ucx-lib PATH, \
                     --engine-venv or --like-pid)",
                    cands.join(", ")
                )
            };
            return Err(FabricError::Memory(
                "cuda",
                format!(
                    "UCX {} ({}) does not support CUDA memory (built without CUDA, or no \
                     cuda transport in UCX_TLS; e.g. add cuda_copy){hint}",
                    ucp.version, ucp.path
                ),
            ));
        }
        Ok(())
    }

    fn map_buffer(&mut self) -> Result<(), FabricError> {
        let ucp = self.ucp;
        self.check_memory_type()?;
        // SAFETY: plain data; zero = no optional fields.
        let mut mp: ucp_mem_map_params_t = unsafe { std::mem::zeroed() };
        mp.field_mask = u64::from(
            UCP_MEM_MAP_PARAM_FIELD_ADDRESS
                | UCP_MEM_MAP_PARAM_FIELD_LENGTH
                | UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE,
        );
        mp.address = self.buf.ptr();
        mp.length = self.buf.len();
        mp.memory_type = self.buf.memory_type();
        // SAFETY: the buffer lives until after the worker and mapping are destroyed.
        ucp.check("ucp_mem_map", unsafe {
            (ucp.mem_map)(self.ctx, &mp, &mut self.mem)
        })?;
        let mut rb: *mut c_void = std::ptr::null_mut();
        let mut rlen = 0usize;
        // SAFETY: mem is a live mapping of ctx; UCX allocates rb, released below.
        ucp.check("ucp_rkey_pack", unsafe {
            (ucp.rkey_pack)(self.ctx, self.mem, &mut rb, &mut rlen)
        })?;
        // SAFETY: rb points at rlen bytes until released.
        self.rkey_packed = unsafe { std::slice::from_raw_parts(rb.cast::<u8>(), rlen) }.to_vec();
        // SAFETY: rb came from ucp_rkey_pack.
        unsafe { (ucp.rkey_buffer_release)(rb) };
        Ok(())
    }

    /// Fills lanes and RMA kind from ucp_ep_query (≥ 1.14) or ucp_ep_print_info.
    pub(super) fn refresh_truth(&mut self) {
        if self.ep.is_null() {
            return;
        }
        lanes::fill_truth(self.ucp, self.ep, &mut self.truth);
        let info = self
            .capture
            .as_ref()
            .map(|c| proto_info::parse(&c.text()))
            .unwrap_or_default();
        let mems = findings::mem_types(&self.truth.memory);
        let (protocols, mut found) = findings::assess(&info, &self.ops, &mems);
        if info.selections.is_empty() {
            found.extend(findings::assess_lanes(
                &self.truth.rma,
                &self.truth.lanes,
                &self.ops,
            ));
        }
        self.truth.protocols = protocols;
        self.truth.findings = found;
    }
}

extern "C" fn on_ep_error(arg: *mut c_void, _ep: ucp_ep_h, status: ucs_status_t) {
    if !arg.is_null() {
        // SAFETY: arg is the endpoint's boxed AtomicI32, alive until the ep is closed.
        let flag = unsafe { &*(arg as *const AtomicI32) };
        flag.store(i32::from(status).min(-1), Ordering::Release);
    }
}

/// PeerInfo.rma: [buffer address u64 LE][length u64 LE][packed rkey].
fn parse_rma(b: &[u8]) -> Result<(u64, u64, &[u8]), FabricError> {
    if b.len() <= 16 {
        return Err(FabricError::BadPeer(format!(
            "rma info of {} bytes",
            b.len()
        )));
    }
    let mut a = [0u8; 8];
    let mut l = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    l.copy_from_slice(&b[8..16]);
    Ok((u64::from_le_bytes(a), u64::from_le_bytes(l), &b[16..]))
}

impl UcxEndpoint {
    /// This side's worker address and RMA description: [buffer address u64 LE]
    /// [length u64 LE][packed rkey].
    pub(super) fn local(&self) -> PeerInfo {
        let mut rma = Vec::with_capacity(16 + self.rkey_packed.len());
        rma.extend_from_slice(&(self.buf.ptr() as u64).to_le_bytes());
        rma.extend_from_slice(&(self.buf.len() as u64).to_le_bytes());
        rma.extend_from_slice(&self.rkey_packed);
        PeerInfo {
            address: self.address.clone(),
            rma,
        }
    }

    /// Creates the endpoint to the peer (with peer error handling where the
    /// transports allow it) and unpacks its rkey.
    pub(super) fn connect_peer(&mut self, peer: &PeerInfo) -> Result<(), FabricError> {
        let ucp = self.ucp;
        if !self.ep.is_null() {
            return Err(FabricError::BadPeer("already connected".into()));
        }
        if peer.address.len() < 8 {
            return Err(FabricError::BadPeer(format!(
                "UCX worker address of {} bytes",
                peer.address.len()
            )));
        }
        let rma = if peer.rma.is_empty() {
            None
        } else {
            Some(parse_rma(&peer.rma)?)
        };
        // SAFETY: plain data; zero = no optional fields.
        let mut ep: ucp_ep_params_t = unsafe { std::mem::zeroed() };
        ep.field_mask = u64::from(
            UCP_EP_PARAM_FIELD_REMOTE_ADDRESS
                | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE
                | UCP_EP_PARAM_FIELD_ERR_HANDLER,
        );
        ep.address = peer.address.as_ptr().cast::<ucp_address_t>();
        ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
        ep.err_handler.cb = Some(on_ep_error);
        ep.err_handler.arg = (&*self.ep_error as *const AtomicI32)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: worker is live; the address bytes are read during the call only;
        // the error-handler arg is boxed and outlives the endpoint.
        let st = unsafe { (ucp.ep_create)(self.worker, &ep, &mut self.ep) };
        if st != UCS_OK {
            // Some transports (posix/sysv in 1.13) lack peer failure detection, and
            // UCX refuses PEER mode on them: retry without; peer_timeout still holds.
            ep.field_mask = u64::from(UCP_EP_PARAM_FIELD_REMOTE_ADDRESS);
            self.ep = std::ptr::null_mut();
            // SAFETY: as above, without the error handler.
            let st2 = unsafe { (ucp.ep_create)(self.worker, &ep, &mut self.ep) };
            ucp.check("ucp_ep_create", st2)?;
            self.truth.notes.push(format!(
                "error handling mode PEER refused ({}): endpoint without peer failure \
                 detection; a dead peer is found by peer_timeout",
                ucp.status_str(st)
            ));
        }
        if let Some((addr, len, key)) = rma {
            let mut rkey: ucp_rkey_h = std::ptr::null_mut();
            // SAFETY: ep is live; key holds the peer's packed rkey bytes.
            ucp.check("ucp_ep_rkey_unpack", unsafe {
                (ucp.ep_rkey_unpack)(self.ep, key.as_ptr().cast::<c_void>(), &mut rkey)
            })?;
            self.remote = Some(Remote { addr, len, rkey });
        }
        self.refresh_truth();
        Ok(())
    }
}

impl Drop for UcxEndpoint {
    fn drop(&mut self) {
        let ucp = self.ucp;
        if let Some(r) = self.remote.take() {
            // SAFETY: rkey came from ucp_ep_rkey_unpack and is destroyed once.
            unsafe { (ucp.rkey_destroy)(r.rkey) };
        }
        if !self.ep.is_null() {
            // SAFETY: plain data; FORCE closes without waiting for a possibly dead peer.
            let mut p: ucp_request_param_t = unsafe { std::mem::zeroed() };
            p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
            p.flags = UCP_EP_CLOSE_FLAG_FORCE;
            // SAFETY: ep is live and closed once.
            let req = unsafe { (ucp.ep_close_nbx)(self.ep, &p) };
            let never = || false;
            let w = super::req::Waiter {
                ucp,
                worker: self.worker,
                cancel: &never,
                peer_timeout: std::time::Duration::from_secs(1),
                ep_error: &AtomicI32::new(0),
            };
            if let Ok(r) = w.start("ucp_ep_close_nbx", req) {
                let _ = w.wait_one(r, "ucp_ep_close_nbx");
            }
            self.ep = std::ptr::null_mut();
        }
        if !self.worker.is_null() {
            // SAFETY: worker is live and destroyed once, after its endpoint.
            unsafe { (ucp.worker_destroy)(self.worker) };
        }
        if !self.mem.is_null() {
            // SAFETY: mem is a live mapping of ctx, unmapped once.
            unsafe { (ucp.mem_unmap)(self.ctx, self.mem) };
        }
        if !self.ctx.is_null() {
            // SAFETY: ctx is live; its worker and mapping are gone.
            unsafe { (ucp.cleanup)(self.ctx) };
        }
    }
}
