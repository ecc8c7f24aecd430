//! `fi_info` lists and hints, owned: freed with `fi_freeinfo` on drop.

use std::ffi::{c_char, CStr, CString};

use super::consts as c;
use super::loader::{Lib, API_VERSION};
use super::sys;
use crate::error::FabricError;

/// A list returned by `fi_getinfo` (or a single `fi_dupinfo` copy).
pub struct InfoList {
    lib: &'static Lib,
    head: *mut sys::fi_info,
}

// SAFETY: the list is plain heap data owned by this value; libfabric does not
// tie it to a thread.
unsafe impl Send for InfoList {}

impl Drop for InfoList {
    fn drop(&mut self) {
        if !self.head.is_null() {
            // SAFETY: head came from fi_getinfo/fi_dupinfo of this library and is
            // freed once.
            unsafe { (self.lib.freeinfo)(self.head) };
        }
    }
}

impl InfoList {
    /// `fi_getinfo(FI_VERSION(1,17), NULL, NULL, 0, hints, &list)`. An empty match
    /// (`-FI_ENODATA`) is an empty list.
    pub fn get(lib: &'static Lib, hints: Option<&Hints>) -> Result<InfoList, FabricError> {
        let mut head: *mut sys::fi_info = std::ptr::null_mut();
        let h = hints.map_or(std::ptr::null(), |h| h.ptr as *const sys::fi_info);
        // SAFETY: null node/service, hints either null or a valid fi_info from
        // fi_dupinfo; head is an out-pointer we own.
        let rc = unsafe {
            (lib.getinfo)(
                API_VERSION,
                std::ptr::null(),
                std::ptr::null(),
                0,
                h,
                &mut head,
            )
        };
        if i64::from(rc) == c::ENODATA {
            return Ok(InfoList {
                lib,
                head: std::ptr::null_mut(),
            });
        }
        if rc != 0 {
            return Err(lib.err("fi_getinfo", rc.into()));
        }
        Ok(InfoList { lib, head })
    }

    /// The entries, in the provider's order of preference.
    pub fn iter(&self) -> impl Iterator<Item = &sys::fi_info> {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            // SAFETY: cur is a node of the list we own; it lives as long as &self.
            let info = unsafe { &*cur };
            cur = info.next;
            Some(info)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// A copy (`fi_dupinfo`) of the first entry whose `max_msg_size` covers
    /// `min_msg` (e.g. EFA lists `efa-direct`, with an MTU-sized limit, before
    /// `efa`), or of the first entry when none does.
    pub fn dup_preferred(&self, min_msg: u64) -> Result<InfoList, FabricError> {
        if self.head.is_null() {
            return Err(FabricError::Unsupported("empty fi_info list".into()));
        }
        let fits = |i: &sys::fi_info| {
            // SAFETY: ep_attr of a live entry is valid or null.
            !i.ep_attr.is_null() && unsafe { (*i.ep_attr).max_msg_size as u64 } >= min_msg
        };
        let pick = self
            .iter()
            .find(|i| fits(i))
            .map_or(self.head, |i| i as *const sys::fi_info as *mut sys::fi_info);
        // SAFETY: pick is a valid entry of our list; fi_dupinfo deep-copies one entry.
        let one = unsafe { (self.lib.dupinfo)(pick) };
        if one.is_null() {
            return Err(self.lib.err("fi_dupinfo", c::ENOMEM));
        }
        // SAFETY: the copy is ours; cut it from any list it may point to.
        unsafe { (*one).next = std::ptr::null_mut() };
        Ok(InfoList {
            lib: self.lib,
            head: one,
        })
    }

    /// Raw pointer to the first entry (for fi_fabric / fi_domain / fi_endpoint).
    pub fn as_ptr(&self) -> *mut sys::fi_info {
        self.head
    }
}

/// Hints for `fi_getinfo`, allocated by the library (`fi_allocinfo`) so that
/// `fi_freeinfo` frees the strings we put in with `strdup`.
pub struct Hints {
    lib: &'static Lib,
    ptr: *mut sys::fi_info,
}

impl Drop for Hints {
    fn drop(&mut self) {
        // SAFETY: ptr came from fi_dupinfo(NULL); freed once.
        unsafe { (self.lib.freeinfo)(self.ptr) };
    }
}

impl Hints {
    pub fn new(lib: &'static Lib) -> Result<Hints, FabricError> {
        // SAFETY: fi_dupinfo(NULL) is fi_allocinfo(): a zeroed info with attrs.
        let ptr = unsafe { (lib.dupinfo)(std::ptr::null()) };
        let ok = !ptr.is_null()
            // SAFETY: ptr is non-null (checked first).
            && unsafe {
                !(*ptr).ep_attr.is_null()
                    && !(*ptr).domain_attr.is_null()
                    && !(*ptr).fabric_attr.is_null()
            };
        if !ok {
            return Err(lib.err("fi_allocinfo", c::ENOMEM));
        }
        Ok(Hints { lib, ptr })
    }

    /// Fills the hints for a probe endpoint: RDM, tagged + msg (+ RMA, + HMEM),
    /// the context modes we honour and the MR modes we can handle.
    pub fn set(&mut self, provider: &str, caps: u64, mr_mode: u64) -> Result<(), FabricError> {
        let name = CString::new(provider)
            .map_err(|_| FabricError::BadPeer(format!("provider name {provider:?}")))?;
        // SAFETY: ptr and its attr structs are valid (checked in new); prov_name
        // is set to a malloc'd copy that fi_freeinfo will free.
        unsafe {
            let i = &mut *self.ptr;
            i.caps = caps;
            i.mode = c::CONTEXT | c::CONTEXT2;
            (*i.ep_attr).type_ = sys::FI_EP_RDM;
            (*i.domain_attr).mr_mode = mr_mode as _;
            let fa = &mut *i.fabric_attr;
            if !fa.prov_name.is_null() {
                libc::free(fa.prov_name as *mut libc::c_void);
            }
            fa.prov_name = libc::strdup(name.as_ptr());
        }
        Ok(())
    }
}

/// A C string field as a Rust string ("" for NULL).
pub fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: libfabric string fields are NUL-terminated when non-null.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Provider / fabric / domain names of an entry.
pub fn names(info: &sys::fi_info) -> (String, String, String) {
    // SAFETY: attr pointers of a fi_getinfo entry are valid or null.
    unsafe {
        let (p, f) = if info.fabric_attr.is_null() {
            (String::new(), String::new())
        } else {
            let fa = &*info.fabric_attr;
            (cstr(fa.prov_name), cstr(fa.name))
        };
        let d = if info.domain_attr.is_null() {
            String::new()
        } else {
            cstr((*info.domain_attr).name)
        };
        (p, f, d)
    }
}
