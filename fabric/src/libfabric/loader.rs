//! Loads libfabric at run time. Only a handful of functions are real exports; the
//! versioned ones (`fi_getinfo`, `fi_freeinfo`, `fi_dupinfo`) are taken at
//! `FABRIC_1.3`, the ABI of the 1.17 headers our `sys.rs` was generated from, so that
//! a newer library (AWS EFA installer 2.x) hands us structs of the layout we know.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use super::sys;
use crate::error::FabricError;
use crate::libcache::LibCache;
use crate::libs::LIBFABRIC_CANDIDATES;

/// The ABI version node of the info functions matching our bindings.
pub const ABI_NODE: &str = "FABRIC_1.3";
/// The API version we ask for in `fi_getinfo` (`FI_VERSION(1, 17)`).
pub const API_VERSION: u32 = (1 << 16) | 17;

pub type GetInfoFn = unsafe extern "C" fn(
    u32,
    *const c_char,
    *const c_char,
    u64,
    *const sys::fi_info,
    *mut *mut sys::fi_info,
) -> c_int;
pub type FreeInfoFn = unsafe extern "C" fn(*mut sys::fi_info);
pub type DupInfoFn = unsafe extern "C" fn(*const sys::fi_info) -> *mut sys::fi_info;
pub type FabricFn =
    unsafe extern "C" fn(*mut sys::fi_fabric_attr, *mut *mut sys::fid_fabric, *mut c_void) -> c_int;
pub type StrErrorFn = unsafe extern "C" fn(c_int) -> *const c_char;
pub type VersionFn = unsafe extern "C" fn() -> u32;
pub type ToStrFn = unsafe extern "C" fn(*const c_void, sys::fi_type) -> *mut c_char;

/// The loaded library: its path and the exported functions we use. Never unloaded
/// (providers keep threads and handlers alive for the life of the process).
pub struct Lib {
    pub path: String,
    pub getinfo: GetInfoFn,
    pub freeinfo: FreeInfoFn,
    pub dupinfo: DupInfoFn,
    pub fabric: FabricFn,
    pub strerror: StrErrorFn,
    pub version: VersionFn,
    pub tostr: ToStrFn,
}

impl Lib {
    /// `fi_version()` as "major.minor".
    pub fn version_string(&self) -> String {
        // SAFETY: fi_version takes no arguments and returns the packed version.
        let v = unsafe { (self.version)() };
        format!("{}.{}", v >> 16, v & 0xffff)
    }

    /// `fi_strerror` for a (positive or negative) libfabric return code.
    pub fn strerror(&self, code: i64) -> String {
        let c = c_int::try_from(code.unsigned_abs()).unwrap_or(c_int::MAX);
        // SAFETY: fi_strerror returns a pointer to a static string for any code.
        let p = unsafe { (self.strerror)(c) };
        if p.is_null() {
            return format!("error {code}");
        }
        // SAFETY: non-null, NUL-terminated static string from the library.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// A `FabricError::Call` for a failed call returning `code`.
    pub fn err(&self, call: &'static str, code: i64) -> FabricError {
        FabricError::Call {
            call,
            code,
            message: self.strerror(code),
        }
    }
}

static LIB: OnceLock<Result<&'static Lib, String>> = OnceLock::new();
static NAMED: LibCache<Lib> = LibCache::new();

/// The process-wide default libfabric, loaded on first use.
pub fn lib() -> Result<&'static Lib, FabricError> {
    lib_at(None)
}

/// The libfabric at `path` (an engine's own), or the default one; each distinct
/// library is loaded once and kept.
pub fn lib_at(path: Option<&str>) -> Result<&'static Lib, FabricError> {
    let r = match path {
        Some(p) => NAMED.get_or_load(p, || load(&[p])),
        None => LIB
            .get_or_init(|| load(LIBFABRIC_CANDIDATES).map(|l| &*Box::leak(Box::new(l))))
            .clone(),
    };
    r.map_err(|reason| FabricError::Unavailable {
        library: "libfabric",
        reason,
    })
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a thread-local NUL-terminated message.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        "unknown dl error".to_string()
    } else {
        // SAFETY: non-null, NUL-terminated (see above).
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn load(cands: &[&str]) -> Result<Lib, String> {
    let mut errs = Vec::new();
    for cand in cands {
        let c = CString::new(*cand).map_err(|e| e.to_string())?;
        // SAFETY: dlopen of the system libfabric, loaded deliberately; its
        // initialisers run here. The handle is kept for the life of the process.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if h.is_null() {
            errs.push(dlerror());
            continue;
        }
        return resolve(h, cand).map_err(|e| format!("{cand}: {e}"));
    }
    Err(errs.join("; "))
}

fn sym(h: *mut c_void, name: &str, version: Option<&str>) -> Result<*mut c_void, String> {
    let n = CString::new(name).map_err(|e| e.to_string())?;
    let p = match version {
        Some(v) => {
            let v = CString::new(v).map_err(|e| e.to_string())?;
            // SAFETY: h is a live dlopen handle; both strings are NUL-terminated.
            unsafe { libc::dlvsym(h, n.as_ptr(), v.as_ptr()) }
        }
        // SAFETY: as above.
        None => unsafe { libc::dlsym(h, n.as_ptr()) },
    };
    if p.is_null() {
        let at = version.map(|v| format!("@{v}")).unwrap_or_default();
        Err(format!("no symbol {name}{at} ({})", dlerror()))
    } else {
        Ok(p)
    }
}

fn resolve(h: *mut c_void, path: &str) -> Result<Lib, String> {
    let v = Some(ABI_NODE);
    // SAFETY (all transmutes below): each symbol is the libfabric function of that
    // name, whose C prototype (1.17 headers, at the ABI node asked for) is the
    // function-pointer type it is transmuted to.
    unsafe {
        Ok(Lib {
            path: path.to_string(),
            getinfo: std::mem::transmute::<*mut c_void, GetInfoFn>(sym(h, "fi_getinfo", v)?),
            freeinfo: std::mem::transmute::<*mut c_void, FreeInfoFn>(sym(h, "fi_freeinfo", v)?),
            dupinfo: std::mem::transmute::<*mut c_void, DupInfoFn>(sym(h, "fi_dupinfo", v)?),
            fabric: std::mem::transmute::<*mut c_void, FabricFn>(sym(h, "fi_fabric", None)?),
            strerror: std::mem::transmute::<*mut c_void, StrErrorFn>(sym(h, "fi_strerror", None)?),
            version: std::mem::transmute::<*mut c_void, VersionFn>(sym(h, "fi_version", None)?),
            tostr: std::mem::transmute::<*mut c_void, ToStrFn>(sym(h, "fi_tostr", None)?),
        })
    }
}
