//! Availability of the fabric libraries loaded at run time (libfabric, UCX): which
//! file was found and its version, or why none was. The fabric probes load them the
//! same way; here we only report.

use std::ffi::{c_uint, OsStr};

use servescope_proto::v1::Availability;

/// Where libfabric is looked for, in order: the AWS EFA installer's copy first.
pub const LIBFABRIC_CANDIDATES: &[&str] = &["/opt/amazon/efa/lib/libfabric.so.1", "libfabric.so.1"];
/// UCX's protocol layer.
pub const UCX_CANDIDATES: &[&str] = &["libucp.so.0"];

fn open_first(cands: &[&str]) -> Result<(String, libloading::Library), String> {
    let mut errs = Vec::new();
    for c in cands {
        // SAFETY: loading a shared library runs its initialisers; these are the
        // system's libfabric/UCX, which we load deliberately.
        match unsafe { libloading::Library::new(OsStr::new(c)) } {
            Ok(l) => return Ok(((*c).to_string(), l)),
            Err(e) => errs.push(e.to_string()),
        }
    }
    Err(errs.join("; "))
}

/// libfabric: path and `fi_version()`.
pub fn libfabric() -> Availability {
    match open_first(LIBFABRIC_CANDIDATES) {
        Err(e) => Availability {
            available: false,
            detail: format!("libfabric not found ({e})"),
        },
        Ok((path, lib)) => {
            // SAFETY: fi_version takes no arguments and returns the packed version.
            let v = unsafe { lib.get::<unsafe extern "C" fn() -> u32>(b"fi_version\0") }
                .map(|f| unsafe { f() });
            match v {
                Ok(v) => Availability {
                    available: true,
                    detail: format!("{path} (libfabric {}.{})", v >> 16, v & 0xffff),
                },
                Err(e) => Availability {
                    available: false,
                    detail: format!("{path}: no fi_version ({e})"),
                },
            }
        }
    }
}

/// UCX: path and `ucp_get_version()`.
pub fn ucx() -> Availability {
    match open_first(UCX_CANDIDATES) {
        Err(e) => Availability {
            available: false,
            detail: format!("UCX not found ({e})"),
        },
        Ok((path, lib)) => {
            type GetVersion = unsafe extern "C" fn(*mut c_uint, *mut c_uint, *mut c_uint);
            // SAFETY: ucp_get_version writes three unsigned ints we own.
            let v = unsafe { lib.get::<GetVersion>(b"ucp_get_version\0") }.map(|f| {
                let (mut a, mut b, mut c) = (0, 0, 0);
                unsafe { f(&mut a, &mut b, &mut c) };
                (a, b, c)
            });
            match v {
                Ok((a, b, c)) => Availability {
                    available: true,
                    detail: format!("{path} (UCX {a}.{b}.{c})"),
                },
                Err(e) => Availability {
                    available: false,
                    detail: format!("{path}: no ucp_get_version ({e})"),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_without_panicking() {
        // Present or not on this machine, both answers carry a reason or a version.
        for a in [super::libfabric(), super::ucx()] {
            assert!(!a.detail.is_empty());
        }
    }
}
