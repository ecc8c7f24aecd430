//! Loads libucp.so.0 at run time and resolves every UCX function the probe uses
//! into a struct of function pointers. Nothing links against UCX.

use std::ffi::{c_char, c_uint, c_void, CStr, OsStr};

use super::sys::{
    ucp_address_t, ucp_config_t, ucp_context_attr_t, ucp_context_h, ucp_ep_h, ucp_ep_params_t,
    ucp_mem_h, ucp_mem_map_params_t, ucp_params_t, ucp_request_param_t, ucp_rkey_h, ucp_tag_t,
    ucp_worker_h, ucp_worker_params_t, ucs_status_t,
};
use crate::error::FabricError;
use crate::libcache::LibCache;
use crate::libs::UCX_CANDIDATES;

/// `ucs_status_ptr_t`: a request pointer, NULL (done) or an error code cast to a pointer.
pub type StatusPtr = *mut c_void;

/// Resolves one symbol as a function pointer of type `$t`.
macro_rules! sym {
    ($lib:expr, $name:literal) => {{
        // SAFETY: the symbol is a function of libucp (or its dependency libucs) whose
        // C prototype in ucp.h / status.h matches the declared Rust fn pointer type.
        let s = unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
            .map_err(|e| format!("{} not found: {e}", $name))?;
        *s
    }};
}

/// Every UCX entry point the probe calls. `ep_query` is optional: older UCX lacks
/// the transports field, and we only call it when the library is ≥ 1.14.
pub struct Ucp {
    pub path: String,
    pub version: String,
    /// (major, minor, release) from `ucp_get_version`.
    pub numeric: (u32, u32, u32),
    pub status_string: unsafe extern "C" fn(ucs_status_t) -> *const c_char,
    pub config_read:
        unsafe extern "C" fn(*const c_char, *const c_char, *mut *mut ucp_config_t) -> ucs_status_t,
    pub config_modify:
        unsafe extern "C" fn(*mut ucp_config_t, *const c_char, *const c_char) -> ucs_status_t,
    pub config_release: unsafe extern "C" fn(*mut ucp_config_t),
    pub init_version: unsafe extern "C" fn(
        c_uint,
        c_uint,
        *const ucp_params_t,
        *const ucp_config_t,
        *mut ucp_context_h,
    ) -> ucs_status_t,
    pub cleanup: unsafe extern "C" fn(ucp_context_h),
    pub context_query: unsafe extern "C" fn(ucp_context_h, *mut ucp_context_attr_t) -> ucs_status_t,
    pub worker_create: unsafe extern "C" fn(
        ucp_context_h,
        *const ucp_worker_params_t,
        *mut ucp_worker_h,
    ) -> ucs_status_t,
    pub worker_destroy: unsafe extern "C" fn(ucp_worker_h),
    pub worker_get_address:
        unsafe extern "C" fn(ucp_worker_h, *mut *mut ucp_address_t, *mut usize) -> ucs_status_t,
    pub worker_release_address: unsafe extern "C" fn(ucp_worker_h, *mut ucp_address_t),
    pub worker_progress: unsafe extern "C" fn(ucp_worker_h) -> c_uint,
    pub mem_map: unsafe extern "C" fn(
        ucp_context_h,
        *const ucp_mem_map_params_t,
        *mut ucp_mem_h,
    ) -> ucs_status_t,
    pub mem_unmap: unsafe extern "C" fn(ucp_context_h, ucp_mem_h) -> ucs_status_t,
    pub rkey_pack: unsafe extern "C" fn(
        ucp_context_h,
        ucp_mem_h,
        *mut *mut c_void,
        *mut usize,
    ) -> ucs_status_t,
    pub rkey_buffer_release: unsafe extern "C" fn(*mut c_void),
    pub ep_rkey_unpack:
        unsafe extern "C" fn(ucp_ep_h, *const c_void, *mut ucp_rkey_h) -> ucs_status_t,
    pub rkey_destroy: unsafe extern "C" fn(ucp_rkey_h),
    pub ep_create:
        unsafe extern "C" fn(ucp_worker_h, *const ucp_ep_params_t, *mut ucp_ep_h) -> ucs_status_t,
    pub ep_close_nbx: unsafe extern "C" fn(ucp_ep_h, *const ucp_request_param_t) -> StatusPtr,
    pub ep_print_info: unsafe extern "C" fn(ucp_ep_h, *mut libc::FILE),
    pub ep_flush_nbx: unsafe extern "C" fn(ucp_ep_h, *const ucp_request_param_t) -> StatusPtr,
    pub tag_send_nbx: unsafe extern "C" fn(
        ucp_ep_h,
        *const c_void,
        usize,
        ucp_tag_t,
        *const ucp_request_param_t,
    ) -> StatusPtr,
    pub tag_recv_nbx: unsafe extern "C" fn(
        ucp_worker_h,
        *mut c_void,
        usize,
        ucp_tag_t,
        ucp_tag_t,
        *const ucp_request_param_t,
    ) -> StatusPtr,
    pub request_check_status: unsafe extern "C" fn(*mut c_void) -> ucs_status_t,
    pub request_free: unsafe extern "C" fn(*mut c_void),
    pub request_cancel: unsafe extern "C" fn(ucp_worker_h, *mut c_void),
    pub put_nbx: unsafe extern "C" fn(
        ucp_ep_h,
        *const c_void,
        usize,
        u64,
        ucp_rkey_h,
        *const ucp_request_param_t,
    ) -> StatusPtr,
    pub get_nbx: unsafe extern "C" fn(
        ucp_ep_h,
        *mut c_void,
        usize,
        u64,
        ucp_rkey_h,
        *const ucp_request_param_t,
    ) -> StatusPtr,
    /// `ucp_ep_query(ep, ucp_ep_attr_t*)`; the attr layout with transports is in lanes.rs.
    pub ep_query: Option<unsafe extern "C" fn(ucp_ep_h, *mut c_void) -> ucs_status_t>,
    /// libucs's log control, to capture UCX's protocol tables (see capture.rs).
    pub log: Option<LogCtl>,
    _lib: libloading::Library,
}

impl Ucp {
    /// The UCX message for a status code.
    pub fn status_str(&self, s: ucs_status_t) -> String {
        // SAFETY: ucs_status_string returns a static NUL-terminated string for any code.
        let p = unsafe { (self.status_string)(s) };
        if p.is_null() {
            return format!("status {s}");
        }
        // SAFETY: non-null, static, NUL-terminated (above).
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// Turns a status into `FabricError::Call` naming the UCX function.
    pub fn check(&self, call: &'static str, s: ucs_status_t) -> Result<(), FabricError> {
        if s == super::sys::UCS_OK {
            Ok(())
        } else {
            Err(FabricError::Call {
                call,
                code: i64::from(s),
                message: self.status_str(s),
            })
        }
    }

    /// `ucp_ep_query` with transports exists from UCX 1.14 on.
    pub fn has_ep_transports(&self) -> bool {
        self.ep_query.is_some() && (self.numeric.0, self.numeric.1) >= (1, 14)
    }
}

/// libucs functions that redirect UCX's log: `ucs_global_opts_set_value` /
/// `_get_value`, then `ucs_log_cleanup` + `ucs_log_init` reopen the log file.
pub struct LogCtl {
    pub set_value: unsafe extern "C" fn(*const c_char, *const c_char) -> ucs_status_t,
    pub get_value: unsafe extern "C" fn(*const c_char, *mut c_char, usize) -> ucs_status_t,
    pub log_cleanup: unsafe extern "C" fn(),
    pub log_init: unsafe extern "C" fn(),
    pub log_flush: Option<unsafe extern "C" fn()>,
}

fn log_ctl(lib: &libloading::Library) -> Result<LogCtl, String> {
    // SAFETY: libucs's exported log control (ucs/config/global_opts.h, ucs/debug/log.h),
    // present in every UCX ≥ 1.9 with these prototypes.
    let log_flush = unsafe { lib.get(b"ucs_log_flush\0") }.ok().map(|s| *s);
    Ok(LogCtl {
        set_value: sym!(lib, "ucs_global_opts_set_value"),
        get_value: sym!(lib, "ucs_global_opts_get_value"),
        log_cleanup: sym!(lib, "ucs_log_cleanup"),
        log_init: sym!(lib, "ucs_log_init"),
        log_flush,
    })
}

fn load_from(name: &str) -> Result<Ucp, String> {
    // SAFETY: loading the system's libucp runs its initialisers, which we want.
    let lib = unsafe { libloading::Library::new(OsStr::new(name)) }.map_err(|e| e.to_string())?;
    let get_version: unsafe extern "C" fn(*mut c_uint, *mut c_uint, *mut c_uint) =
        sym!(lib, "ucp_get_version");
    let get_version_string: unsafe extern "C" fn() -> *const c_char =
        sym!(lib, "ucp_get_version_string");
    let (mut a, mut b, mut c) = (0, 0, 0);
    // SAFETY: writes three unsigned ints we own.
    unsafe { get_version(&mut a, &mut b, &mut c) };
    // SAFETY: returns a static NUL-terminated string.
    let vs = unsafe { get_version_string() };
    let version = if vs.is_null() {
        format!("{a}.{b}.{c}")
    } else {
        // SAFETY: non-null static string (above).
        unsafe { CStr::from_ptr(vs) }.to_string_lossy().into_owned()
    };
    let path = real_path(get_version as *const c_void).unwrap_or_else(|| name.to_string());
    // SAFETY: same prototype as in ucp.h (1.14+); absent before 1.10.
    let ep_query = unsafe { lib.get(b"ucp_ep_query\0") }.ok().map(|s| *s);
    Ok(Ucp {
        path,
        version,
        numeric: (a, b, c),
        status_string: sym!(lib, "ucs_status_string"),
        config_read: sym!(lib, "ucp_config_read"),
        config_modify: sym!(lib, "ucp_config_modify"),
        config_release: sym!(lib, "ucp_config_release"),
        init_version: sym!(lib, "ucp_init_version"),
        cleanup: sym!(lib, "ucp_cleanup"),
        context_query: sym!(lib, "ucp_context_query"),
        worker_create: sym!(lib, "ucp_worker_create"),
        worker_destroy: sym!(lib, "ucp_worker_destroy"),
        worker_get_address: sym!(lib, "ucp_worker_get_address"),
        worker_release_address: sym!(lib, "ucp_worker_release_address"),
        worker_progress: sym!(lib, "ucp_worker_progress"),
        mem_map: sym!(lib, "ucp_mem_map"),
        mem_unmap: sym!(lib, "ucp_mem_unmap"),
        rkey_pack: sym!(lib, "ucp_rkey_pack"),
        rkey_buffer_release: sym!(lib, "ucp_rkey_buffer_release"),
        ep_rkey_unpack: sym!(lib, "ucp_ep_rkey_unpack"),
        rkey_destroy: sym!(lib, "ucp_rkey_destroy"),
        ep_create: sym!(lib, "ucp_ep_create"),
        ep_close_nbx: sym!(lib, "ucp_ep_close_nbx"),
        ep_print_info: sym!(lib, "ucp_ep_print_info"),
        ep_flush_nbx: sym!(lib, "ucp_ep_flush_nbx"),
        tag_send_nbx: sym!(lib, "ucp_tag_send_nbx"),
        tag_recv_nbx: sym!(lib, "ucp_tag_recv_nbx"),
        request_check_status: sym!(lib, "ucp_request_check_status"),
        request_free: sym!(lib, "ucp_request_free"),
        request_cancel: sym!(lib, "ucp_request_cancel"),
        put_nbx: sym!(lib, "ucp_put_nbx"),
        get_nbx: sym!(lib, "ucp_get_nbx"),
        ep_query,
        log: log_ctl(&lib).ok(),
        _lib: lib,
    })
}

/// The file a symbol was loaded from (dladdr), e.g. /lib/x86_64-linux-gnu/libucp.so.0.
fn real_path(sym: *const c_void) -> Option<String> {
    // SAFETY: Dl_info is plain data; zeroed is a valid initial value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address and fills `info`.
    let ok = unsafe { libc::dladdr(sym, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
    Some(
        unsafe { CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned(),
    )
}

static UCP: LibCache<Ucp> = LibCache::new();

/// The UCX binding for `library` (a path to a libucp, e.g. an engine's bundled
/// `libucp-<hash>.so.0.0.0`), or the default one: `SERVESCOPE_UCX_LIB`, else the
/// system's libucp.so.0. Each distinct library is loaded once and kept.
pub fn ucp_at(library: Option<&str>) -> Result<&'static Ucp, FabricError> {
    let unavailable = |reason: String| FabricError::Unavailable {
        library: "ucx",
        reason,
    };
    if let Some(path) = library {
        return UCP
            .get_or_load(path, || load_from(path))
            .map_err(|e| unavailable(format!("{path}: {e}")));
    }
    let mut cands: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("SERVESCOPE_UCX_LIB") {
        cands.push(p);
    }
    cands.extend(UCX_CANDIDATES.iter().map(|s| s.to_string()));
    let mut errs = Vec::new();
    for c in &cands {
        match UCP.get_or_load(c, || load_from(c)) {
            Ok(u) => return Ok(u),
            Err(e) => errs.push(format!("{c}: {e}")),
        }
    }
    Err(unavailable(errs.join("; ")))
}
