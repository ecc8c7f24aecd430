//! Rust versions of the `static inline` dispatchers of the libfabric headers
//! (`fi_domain`, `fi_endpoint`, `fi_tsend`, …): each one reads a function pointer
//! from the ops table inside a `struct fid_*` and calls it. The library does not
//! export them, so a run-time binding must re-implement them; the 1.17 headers
//! are the reference (`fi_domain.h`, `fi_endpoint.h`, `fi_tagged.h`, `fi_rma.h`,
//! `fi_cm.h`, `fi_eq.h`, `fabric.h`).
//!
//! All functions are `unsafe`: the caller passes live objects opened by libfabric.
//! A missing entry (NULL pointer in a provider's table) returns `-FI_ENOSYS`.
//! Return values are widened to `i64` (negative = `-FI_E*`).

use std::ffi::{c_char, c_int, c_void};

use super::sys;

/// `-FI_ENOSYS`, for a NULL entry in an ops table.
pub const NOSYS: i64 = -(sys::FI_ENOSYS as i64);

macro_rules! call {
    ($table:expr, $f:ident ( $($arg:expr),* $(,)? )) => {{
        let table = $table;
        if table.is_null() {
            NOSYS
        } else {
            match (*table).$f {
                Some(f) => f($($arg),*) as i64,
                None => NOSYS,
            }
        }
    }};
}

/// `fi_close(fid)`.
pub unsafe fn close(fid: *mut sys::fid) -> i64 {
    if fid.is_null() {
        return 0;
    }
    call!((*fid).ops, close(fid))
}

/// `fi_domain(fabric, info, &domain, context)`.
pub unsafe fn domain(
    fabric: *mut sys::fid_fabric,
    info: *mut sys::fi_info,
    out: *mut *mut sys::fid_domain,
) -> i64 {
    call!(
        (*fabric).ops,
        domain(fabric, info, out, std::ptr::null_mut())
    )
}

/// `fi_av_open(domain, attr, &av, context)`.
pub unsafe fn av_open(
    domain: *mut sys::fid_domain,
    attr: *mut sys::fi_av_attr,
    out: *mut *mut sys::fid_av,
) -> i64 {
    call!(
        (*domain).ops,
        av_open(domain, attr, out, std::ptr::null_mut())
    )
}

/// `fi_cq_open(domain, attr, &cq, context)`.
pub unsafe fn cq_open(
    domain: *mut sys::fid_domain,
    attr: *mut sys::fi_cq_attr,
    out: *mut *mut sys::fid_cq,
) -> i64 {
    call!(
        (*domain).ops,
        cq_open(domain, attr, out, std::ptr::null_mut())
    )
}

/// `fi_endpoint(domain, info, &ep, context)`.
pub unsafe fn endpoint(
    domain: *mut sys::fid_domain,
    info: *mut sys::fi_info,
    out: *mut *mut sys::fid_ep,
) -> i64 {
    call!(
        (*domain).ops,
        endpoint(domain, info, out, std::ptr::null_mut())
    )
}

/// `fi_ep_bind(ep, bfid, flags)`: `ep->fid.ops->bind`.
pub unsafe fn ep_bind(ep: *mut sys::fid_ep, bfid: *mut sys::fid, flags: u64) -> i64 {
    let fid = std::ptr::addr_of_mut!((*ep).fid);
    call!((*fid).ops, bind(fid, bfid, flags))
}

/// `fi_enable(ep)`: `control(FI_ENABLE)`.
pub unsafe fn enable(ep: *mut sys::fid_ep) -> i64 {
    let fid = std::ptr::addr_of_mut!((*ep).fid);
    call!(
        (*fid).ops,
        control(fid, sys::FI_ENABLE as c_int, std::ptr::null_mut())
    )
}

/// `fi_getname(&ep->fid, addr, &len)`.
pub unsafe fn getname(ep: *mut sys::fid_ep, addr: *mut c_void, len: *mut usize) -> i64 {
    let fid = std::ptr::addr_of_mut!((*ep).fid);
    call!((*ep).cm, getname(fid, addr, len))
}

/// `fi_av_insert(av, addr, 1, &fi_addr, 0, NULL)`: returns the number inserted.
pub unsafe fn av_insert(av: *mut sys::fid_av, addr: *const c_void, out: *mut u64) -> i64 {
    call!((*av).ops, insert(av, addr, 1, out, 0, std::ptr::null_mut()))
}

/// `fi_mr_regattr(domain, attr, flags, &mr)`.
pub unsafe fn mr_regattr(
    domain: *mut sys::fid_domain,
    attr: *const sys::fi_mr_attr,
    flags: u64,
    out: *mut *mut sys::fid_mr,
) -> i64 {
    let fid = std::ptr::addr_of_mut!((*domain).fid);
    call!((*domain).mr, regattr(fid, attr, flags, out))
}

/// `fi_mr_bind(mr, &ep->fid, 0)` (FI_MR_ENDPOINT).
pub unsafe fn mr_bind(mr: *mut sys::fid_mr, ep: *mut sys::fid_ep) -> i64 {
    let fid = std::ptr::addr_of_mut!((*mr).fid);
    let bfid = std::ptr::addr_of_mut!((*ep).fid);
    call!((*fid).ops, bind(fid, bfid, 0))
}

/// `fi_mr_enable(mr)`: `control(FI_ENABLE)`.
pub unsafe fn mr_enable(mr: *mut sys::fid_mr) -> i64 {
    let fid = std::ptr::addr_of_mut!((*mr).fid);
    call!(
        (*fid).ops,
        control(fid, sys::FI_ENABLE as c_int, std::ptr::null_mut())
    )
}

/// `fi_tsend(ep, buf, len, desc, dest, tag, context)`.
pub unsafe fn tsend(
    ep: *mut sys::fid_ep,
    buf: *const c_void,
    len: usize,
    desc: *mut c_void,
    dest: u64,
    tag: u64,
    ctx: *mut c_void,
) -> i64 {
    call!((*ep).tagged, send(ep, buf, len, desc, dest, tag, ctx))
}

/// `fi_trecv(ep, buf, len, desc, src, tag, ignore, context)`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn trecv(
    ep: *mut sys::fid_ep,
    buf: *mut c_void,
    len: usize,
    desc: *mut c_void,
    src: u64,
    tag: u64,
    ignore: u64,
    ctx: *mut c_void,
) -> i64 {
    call!(
        (*ep).tagged,
        recv(ep, buf, len, desc, src, tag, ignore, ctx)
    )
}

/// `fi_write(ep, buf, len, desc, dest, addr, key, context)`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn write(
    ep: *mut sys::fid_ep,
    buf: *const c_void,
    len: usize,
    desc: *mut c_void,
    dest: u64,
    addr: u64,
    key: u64,
    ctx: *mut c_void,
) -> i64 {
    call!((*ep).rma, write(ep, buf, len, desc, dest, addr, key, ctx))
}

/// `fi_read(ep, buf, len, desc, src, addr, key, context)`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn read(
    ep: *mut sys::fid_ep,
    buf: *mut c_void,
    len: usize,
    desc: *mut c_void,
    src: u64,
    addr: u64,
    key: u64,
    ctx: *mut c_void,
) -> i64 {
    call!((*ep).rma, read(ep, buf, len, desc, src, addr, key, ctx))
}

/// `fi_cq_read(cq, buf, count)`: entries read, or `-FI_EAGAIN` / `-FI_EAVAIL`.
pub unsafe fn cq_read(cq: *mut sys::fid_cq, buf: *mut c_void, count: usize) -> i64 {
    call!((*cq).ops, read(cq, buf, count))
}

/// `fi_cq_readerr(cq, buf, flags)`.
pub unsafe fn cq_readerr(cq: *mut sys::fid_cq, buf: *mut sys::fi_cq_err_entry) -> i64 {
    call!((*cq).ops, readerr(cq, buf, 0))
}

/// `fi_cq_strerror(cq, prov_errno, err_data, buf, len)`: the provider's message.
pub unsafe fn cq_strerror(
    cq: *mut sys::fid_cq,
    prov_errno: c_int,
    err_data: *const c_void,
    buf: *mut c_char,
    len: usize,
) -> *const c_char {
    let table = (*cq).ops;
    if table.is_null() {
        return std::ptr::null();
    }
    match (*table).strerror {
        Some(f) => f(cq, prov_errno, err_data, buf, len),
        None => std::ptr::null(),
    }
}
