//! Opening and closing one RDM endpoint over a named provider: fabric, domain,
//! AV (table), CQ (tagged format), EP, and the registered buffers.

use std::ffi::c_void;

use super::consts as c;
use super::info::{names, Hints, InfoList};
use super::loader::{lib_at, Lib};
use super::memory::{Region, RemoteBuf};
use super::providers::mr_mode_names;
use super::slots::{self, Counters, CTRL_SLOT};
use super::{ops, sys};
use crate::endpoint::PeerInfo;
use crate::error::FabricError;
use crate::plan::{MemKind, Op, ProbePlan, TransportTruth};

/// One side of a probe over libfabric. Opened for a plan (its largest size and
/// window size the buffers and contexts), then `connect`ed to the peer.
pub struct LibfabricEndpoint {
    pub(super) lib: &'static Lib,
    pub(super) info: InfoList,
    pub(super) fabric: *mut sys::fid_fabric,
    pub(super) domain: *mut sys::fid_domain,
    pub(super) av: *mut sys::fid_av,
    pub(super) cq: *mut sys::fid_cq,
    pub(super) ep: *mut sys::fid_ep,
    pub(super) data: Option<Region>,
    pub(super) ctrl: Option<Region>,
    /// One `fi_context2` per operation in flight (see `slots::Slot`).
    pub(super) ctx: Box<[sys::fi_context2]>,
    pub(super) window: usize,
    pub(super) cnt: Counters,
    pub(super) peer: Option<u64>,
    pub(super) remote: Option<RemoteBuf>,
    pub(super) rma: bool,
    pub(super) virt_addr: bool,
    pub(super) max_msg: u64,
    pub(super) address: Vec<u8>,
    pub(super) truth: TransportTruth,
    pub(super) silent_after_sizes: Option<usize>,
}

// SAFETY: every libfabric object here is owned by this value and used from one
// thread at a time (`&mut self`); the raw pointers are not shared elsewhere.
unsafe impl Send for LibfabricEndpoint {}

fn wants_rma(plan: &ProbePlan) -> bool {
    plan.ops
        .iter()
        .any(|o| matches!(o, Op::RmaWrite | Op::RmaRead))
}

fn lookup(
    lib: &'static Lib,
    provider: &str,
    caps: u64,
    mr_mode: u64,
) -> Result<InfoList, FabricError> {
    let mut h = Hints::new(lib)?;
    h.set(provider, caps, mr_mode)?;
    InfoList::get(lib, Some(&h))
}

impl LibfabricEndpoint {
    /// Opens an RDM endpoint on `provider` ("tcp", "shm", "efa", "verbs", …) with
    /// buffers for `plan` (host memory, or CUDA when the provider offers FI_HMEM).
    pub fn open(provider: &str, plan: &ProbePlan) -> Result<Self, FabricError> {
        Self::open_with(provider, None, plan)
    }

    /// [`Self::open`] with the libfabric file at `library` (None: the default one).
    pub fn open_with(
        provider: &str,
        library: Option<&str>,
        plan: &ProbePlan,
    ) -> Result<Self, FabricError> {
        plan.validate()?;
        let lib = lib_at(library)?;
        let mut caps = c::TAGGED | c::MSG;
        let mut mr_mode = c::MR_LOCAL | c::MR_VIRT_ADDR | c::MR_ALLOCATED;
        mr_mode |= c::MR_PROV_KEY | c::MR_ENDPOINT;
        let cuda = matches!(plan.mem, MemKind::Cuda(_));
        if cuda {
            crate::cuda::available()?;
            caps |= c::HMEM;
            mr_mode |= c::MR_HMEM;
        }
        let rma_caps = c::RMA | c::READ | c::WRITE | c::REMOTE_READ | c::REMOTE_WRITE;
        let mut notes = Vec::new();
        let mut rma = false;
        let mut found = None;
        if wants_rma(plan) {
            let l = lookup(lib, provider, caps | rma_caps, mr_mode)?;
            if !l.is_empty() {
                rma = true;
                found = Some(l);
            }
        }
        let list = match found {
            Some(l) => l,
            None => {
                let l = lookup(lib, provider, caps, mr_mode)?;
                if wants_rma(plan) && !l.is_empty() {
                    notes.push(format!("provider {provider} does not offer FI_RMA"));
                }
                l
            }
        };
        if list.is_empty() && cuda && !lookup(lib, provider, caps & !c::HMEM, mr_mode)?.is_empty() {
            return Err(FabricError::Memory(
                "cuda",
                format!("provider {provider} does not offer FI_HMEM"),
            ));
        }
        if list.is_empty() {
            return Err(FabricError::Call {
                call: "fi_getinfo",
                code: c::ENODATA,
                message: format!(
                    "provider `{provider}` offers no FI_EP_RDM endpoint with FI_TAGGED|FI_MSG ({})",
                    lib.strerror(c::ENODATA)
                ),
            });
        }
        let info = list.dup_preferred(plan.buffer_bytes())?;
        drop(list);
        let window = plan.window as usize;
        let mut me = LibfabricEndpoint {
            lib,
            info,
            fabric: std::ptr::null_mut(),
            domain: std::ptr::null_mut(),
            av: std::ptr::null_mut(),
            cq: std::ptr::null_mut(),
            ep: std::ptr::null_mut(),
            data: None,
            ctrl: None,
            ctx: (0..slots::slots(window))
                // SAFETY: fi_context2 is plain pointers; all-zero is its initial state.
                .map(|_| unsafe { std::mem::zeroed::<sys::fi_context2>() })
                .collect(),
            window,
            cnt: Counters::default(),
            peer: None,
            remote: None,
            rma,
            virt_addr: false,
            max_msg: 0,
            address: Vec::new(),
            truth: TransportTruth::default(),
            silent_after_sizes: None,
        };
        me.build(plan, notes)?;
        Ok(me)
    }

    /// Fault injection for tests: as responder, stop answering (return `Ok`
    /// without a word) when the driver starts a phase of size index `n`.
    pub fn set_responder_silent_after_sizes(&mut self, n: Option<usize>) {
        self.silent_after_sizes = n;
    }

    fn build(&mut self, plan: &ProbePlan, mut notes: Vec<String>) -> Result<(), FabricError> {
        let info = self.info.as_ptr();
        // SAFETY: info is our fi_dupinfo copy (non-null, checked by dup_preferred);
        // every object is opened from its parent and stored for Drop to close.
        unsafe {
            let i = &*info;
            let mr_mode = (*i.domain_attr).mr_mode as u64;
            self.virt_addr = mr_mode & c::MR_VIRT_ADDR != 0;
            self.max_msg = (*i.ep_attr).max_msg_size as u64;
            let rc = (self.lib.fabric)(i.fabric_attr, &mut self.fabric, std::ptr::null_mut());
            check(self.lib, "fi_fabric", rc.into())?;
            check(
                self.lib,
                "fi_domain",
                ops::domain(self.fabric, info, &mut self.domain),
            )?;
            let mut av_attr: sys::fi_av_attr = std::mem::zeroed();
            av_attr.type_ = sys::FI_AV_TABLE;
            av_attr.count = 4;
            check(
                self.lib,
                "fi_av_open",
                ops::av_open(self.domain, &mut av_attr, &mut self.av),
            )?;
            let mut cq_attr: sys::fi_cq_attr = std::mem::zeroed();
            cq_attr.format = sys::FI_CQ_FORMAT_TAGGED;
            cq_attr.wait_obj = sys::FI_WAIT_NONE;
            cq_attr.size = (2 * self.window + 16).max(1024);
            check(
                self.lib,
                "fi_cq_open",
                ops::cq_open(self.domain, &mut cq_attr, &mut self.cq),
            )?;
            check(
                self.lib,
                "fi_endpoint",
                ops::endpoint(self.domain, info, &mut self.ep),
            )?;
            let av_fid = std::ptr::addr_of_mut!((*self.av).fid);
            check(self.lib, "fi_ep_bind(av)", ops::ep_bind(self.ep, av_fid, 0))?;
            let cq_fid = std::ptr::addr_of_mut!((*self.cq).fid);
            let rc = ops::ep_bind(self.ep, cq_fid, c::TRANSMIT | c::RECV);
            check(self.lib, "fi_ep_bind(cq)", rc)?;

            let data_access = if self.rma {
                c::SEND | c::RECV | c::READ | c::WRITE | c::REMOTE_READ | c::REMOTE_WRITE
            } else {
                c::SEND | c::RECV
            };
            let bytes = usize::try_from(plan.buffer_bytes())
                .map_err(|_| FabricError::Memory("host", "buffer too large".into()))?;
            let data = Region::alloc(plan.mem, bytes, plan.touch_payload)?;
            self.data = Some(self.register(data, data_access, 1, mr_mode)?);
            let ctrl = Region::alloc(MemKind::Host, 2 * CTRL_SLOT, true)?;
            self.ctrl = Some(self.register(ctrl, c::SEND | c::RECV, 2, mr_mode)?);

            check(self.lib, "fi_enable", ops::enable(self.ep))?;
            let mut buf = vec![0u8; 256];
            let mut len = buf.len();
            let mut rc = ops::getname(self.ep, buf.as_mut_ptr().cast(), &mut len);
            if rc == c::ETOOSMALL {
                buf.resize(len, 0);
                rc = ops::getname(self.ep, buf.as_mut_ptr().cast(), &mut len);
            }
            check(self.lib, "fi_getname", rc)?;
            buf.truncate(len);
            self.address = buf;

            let (provider, fabric, domain) = names(i);
            let modes = mr_mode_names(mr_mode);
            notes.push(if modes.is_empty() {
                "mr_mode: none".to_string()
            } else {
                format!("mr_mode: {}", modes.join("|"))
            });
            notes.push(format!("max_msg_size: {}", self.max_msg));
            self.truth = TransportTruth {
                library: "libfabric".into(),
                path: self.lib.path.clone(),
                version: self.lib.version_string(),
                rma: if self.rma {
                    format!("FI_RMA offered by provider {provider}")
                } else if wants_rma(plan) {
                    format!("not offered: provider {provider} lacks FI_RMA")
                } else {
                    "not requested".into()
                },
                provider,
                fabric,
                domain,
                lanes: Vec::new(),
                memory: plan.memory_label(),
                notes,
                ..Default::default()
            };
        }
        Ok(())
    }

    /// Registers a region (`fi_mr_regattr`, iface from its memory kind), binding
    /// it to the endpoint when the provider wants FI_MR_ENDPOINT.
    fn register(
        &self,
        mut r: Region,
        access: u64,
        key: u64,
        mr_mode: u64,
    ) -> Result<Region, FabricError> {
        let iov = sys::iovec {
            iov_base: r.ptr(),
            iov_len: r.len().max(1),
        };
        // SAFETY: zeroed fi_mr_attr is valid (null pointers, iface SYSTEM); the
        // iovec and buffer outlive the registration (the MR is closed first).
        unsafe {
            let mut attr: sys::fi_mr_attr = std::mem::zeroed();
            attr.mr_iov = &iov;
            attr.iov_count = 1;
            attr.access = access;
            attr.requested_key = key;
            if let Some(dev) = r.cuda_device() {
                attr.iface = sys::FI_HMEM_CUDA;
                attr.device.cuda = dev;
            }
            let rc = ops::mr_regattr(self.domain, &attr, 0, &mut r.mr);
            if rc < 0 {
                if let Some(dev) = r.cuda_device() {
                    // The provider says FI_HMEM but this build cannot register CUDA
                    // memory (seen on the GPU machine: Debian's shm, -FI_ENOSYS).
                    return Err(FabricError::Memory(
                        "cuda",
                        format!(
                            "this libfabric's provider cannot register device {dev}'s memory \
                             (fi_mr_regattr with FI_HMEM_CUDA: {} ({rc})); a libfabric built \
                             with CUDA support (the EFA installer's) is needed",
                            self.lib.strerror(rc)
                        ),
                    ));
                }
            }
            check(self.lib, "fi_mr_regattr", rc)?;
            if mr_mode & c::MR_ENDPOINT != 0 {
                check(self.lib, "fi_mr_bind", ops::mr_bind(r.mr, self.ep))?;
                check(self.lib, "fi_mr_enable", ops::mr_enable(r.mr))?;
            }
            r.desc = (*r.mr).mem_desc;
            r.key = (*r.mr).key;
        }
        Ok(r)
    }

    /// What the peer needs for RMA into our data buffer.
    fn rma_info(&self) -> Vec<u8> {
        match (&self.data, self.rma) {
            (Some(d), true) => RemoteBuf {
                addr: if self.virt_addr { d.ptr() as u64 } else { 0 },
                len: d.len() as u64,
                key: d.key,
            }
            .encode(),
            _ => Vec::new(),
        }
    }

    pub(super) fn local(&self) -> PeerInfo {
        PeerInfo {
            address: self.address.clone(),
            rma: self.rma_info(),
        }
    }

    pub(super) fn insert_peer(&mut self, peer: &PeerInfo) -> Result<(), FabricError> {
        if self.peer.is_some() {
            return Err(FabricError::BadPeer("already connected".into()));
        }
        if peer.address.is_empty() {
            return Err(FabricError::BadPeer("empty libfabric address".into()));
        }
        self.remote = if peer.rma.is_empty() {
            None
        } else {
            Some(RemoteBuf::decode(&peer.rma)?)
        };
        // Trailing zeros: string-format addresses (FI_ADDR_STR) end with a NUL.
        let mut addr = peer.address.clone();
        addr.extend_from_slice(&[0u8; 8]);
        let mut fi_addr = 0u64;
        // SAFETY: av is open; addr holds at least one address of the provider's
        // format; fi_addr is an out-pointer we own.
        let rc = unsafe { ops::av_insert(self.av, addr.as_ptr().cast::<c_void>(), &mut fi_addr) };
        if rc != 1 {
            let code = if rc < 0 { rc } else { c::ENODATA };
            return Err(FabricError::BadPeer(format!(
                "fi_av_insert inserted {rc} addresses ({})",
                self.lib.strerror(code)
            )));
        }
        self.peer = Some(fi_addr);
        self.post_ctrl_recv()
    }
}

fn check(lib: &Lib, call: &'static str, rc: i64) -> Result<(), FabricError> {
    if rc < 0 {
        Err(lib.err(call, rc))
    } else {
        Ok(())
    }
}

impl Drop for LibfabricEndpoint {
    fn drop(&mut self) {
        // SAFETY: each object was opened by us and is closed once, children first
        // (the endpoint before the memory it may still write to); null ones skip.
        unsafe {
            ops::close(self.ep.cast());
            for r in [self.data.as_mut(), self.ctrl.as_mut()]
                .into_iter()
                .flatten()
            {
                ops::close(r.mr.cast());
                r.mr = std::ptr::null_mut();
            }
            ops::close(self.av.cast());
            ops::close(self.cq.cast());
            ops::close(self.domain.cast());
            ops::close(self.fabric.cast());
        }
    }
}
