//! GPU buffers for fabric probes through the CUDA driver API, loaded at run time
//! (`libcuda.so.1`): no link-time dependency, and a clean reason when absent.

use std::ffi::{c_int, c_uint, c_void, CString};
use std::sync::OnceLock;

use crate::error::FabricError;

type CuResult = c_int;
type CuDevice = c_int;
type CuContext = *mut c_void;
type CuDevPtr = u64;

type InitFn = unsafe extern "C" fn(c_uint) -> CuResult;
type DeviceGetFn = unsafe extern "C" fn(*mut CuDevice, c_int) -> CuResult;
type CtxRetainFn = unsafe extern "C" fn(*mut CuContext, CuDevice) -> CuResult;
type DeviceFn = unsafe extern "C" fn(CuDevice) -> CuResult;
type CtxSetFn = unsafe extern "C" fn(CuContext) -> CuResult;
type MemAllocFn = unsafe extern "C" fn(*mut CuDevPtr, usize) -> CuResult;
type MemFreeFn = unsafe extern "C" fn(CuDevPtr) -> CuResult;
type HtoDFn = unsafe extern "C" fn(CuDevPtr, *const c_void, usize) -> CuResult;
type DtoHFn = unsafe extern "C" fn(*mut c_void, CuDevPtr, usize) -> CuResult;
type SyncFn = unsafe extern "C" fn() -> CuResult;

struct Cuda {
    init: InitFn,
    device_get: DeviceGetFn,
    ctx_retain: CtxRetainFn,
    ctx_release: DeviceFn,
    ctx_set: CtxSetFn,
    mem_alloc: MemAllocFn,
    mem_free: MemFreeFn,
    htod: HtoDFn,
    dtoh: DtoHFn,
    ctx_sync: SyncFn,
}

static CUDA: OnceLock<Result<Cuda, String>> = OnceLock::new();

fn cuda() -> Result<&'static Cuda, FabricError> {
    CUDA.get_or_init(load)
        .as_ref()
        .map_err(|e| FabricError::Memory("cuda", e.clone()))
}

fn load() -> Result<Cuda, String> {
    let name = CString::new("libcuda.so.1").map_err(|e| e.to_string())?;
    // SAFETY: dlopen of the NVIDIA driver library; kept for the life of the process.
    let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        return Err("no CUDA driver (libcuda.so.1 not found)".into());
    }
    let sym = |n: &str| -> Result<*mut c_void, String> {
        let c = CString::new(n).map_err(|e| e.to_string())?;
        // SAFETY: h is a live handle; c is NUL-terminated.
        let p = unsafe { libc::dlsym(h, c.as_ptr()) };
        if p.is_null() {
            Err(format!("libcuda.so.1 has no {n}"))
        } else {
            Ok(p)
        }
    };
    // SAFETY (transmutes): each symbol is the CUDA driver API function of that name
    // with the C prototype of the field it is stored in (cuda.h, CUDA >= 4).
    unsafe {
        Ok(Cuda {
            init: std::mem::transmute::<*mut c_void, InitFn>(sym("cuInit")?),
            device_get: std::mem::transmute::<*mut c_void, DeviceGetFn>(sym("cuDeviceGet")?),
            ctx_retain: std::mem::transmute::<*mut c_void, CtxRetainFn>(sym(
                "cuDevicePrimaryCtxRetain",
            )?),
            ctx_release: std::mem::transmute::<*mut c_void, DeviceFn>(sym(
                "cuDevicePrimaryCtxRelease_v2",
            )?),
            ctx_set: std::mem::transmute::<*mut c_void, CtxSetFn>(sym("cuCtxSetCurrent")?),
            mem_alloc: std::mem::transmute::<*mut c_void, MemAllocFn>(sym("cuMemAlloc_v2")?),
            mem_free: std::mem::transmute::<*mut c_void, MemFreeFn>(sym("cuMemFree_v2")?),
            htod: std::mem::transmute::<*mut c_void, HtoDFn>(sym("cuMemcpyHtoD_v2")?),
            dtoh: std::mem::transmute::<*mut c_void, DtoHFn>(sym("cuMemcpyDtoH_v2")?),
            ctx_sync: std::mem::transmute::<*mut c_void, SyncFn>(sym("cuCtxSynchronize")?),
        })
    }
}

fn check(call: &str, r: CuResult) -> Result<(), FabricError> {
    if r == 0 {
        Ok(())
    } else {
        Err(FabricError::Memory(
            "cuda",
            format!("{call} returned CUresult {r}"),
        ))
    }
}

/// Whether the CUDA driver can be loaded; the reason when not.
pub fn available() -> Result<(), FabricError> {
    cuda().map(|_| ())
}

/// Device memory from `cuMemAlloc` on one GPU's primary context; freed on drop.
pub struct CudaBuffer {
    ptr: CuDevPtr,
    len: usize,
    device: CuDevice,
    /// The primary context retained in `alloc`, made current before each copy.
    ctx: CuContext,
    ordinal: u32,
}

// SAFETY: the buffer is a device address; any thread may free it after making the
// primary context current (done in Drop).
unsafe impl Send for CudaBuffer {}

impl CudaBuffer {
    pub fn alloc(ordinal: u32, len: usize) -> Result<Self, FabricError> {
        let c = cuda()?;
        let ord = c_int::try_from(ordinal)
            .map_err(|_| FabricError::Memory("cuda", format!("bad GPU index {ordinal}")))?;
        let mut dev: CuDevice = 0;
        let mut ctx: CuContext = std::ptr::null_mut();
        let mut ptr: CuDevPtr = 0;
        // SAFETY: driver API calls with out-pointers to locals we own.
        unsafe {
            check("cuInit", (c.init)(0))?;
            check("cuDeviceGet", (c.device_get)(&mut dev, ord))?;
            check("cuDevicePrimaryCtxRetain", (c.ctx_retain)(&mut ctx, dev))?;
            let r = (c.ctx_set)(ctx);
            let failed = if r == 0 {
                let a = (c.mem_alloc)(&mut ptr, len.max(1));
                if a == 0 {
                    return Ok(CudaBuffer {
                        ptr,
                        len,
                        device: dev,
                        ctx,
                        ordinal,
                    });
                }
                ("cuMemAlloc_v2", a)
            } else {
                ("cuCtxSetCurrent", r)
            };
            (c.ctx_release)(dev);
            Err(FabricError::Memory(
                "cuda",
                format!("{} returned CUresult {}", failed.0, failed.1),
            ))
        }
    }

    pub fn ptr(&self) -> *mut c_void {
        self.ptr as usize as *mut c_void
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn device(&self) -> i32 {
        self.device
    }
    pub fn ordinal(&self) -> u32 {
        self.ordinal
    }

    /// Checks that `[off, off+n)` lies in the buffer and makes its context current.
    fn enter(&self, off: usize, n: usize) -> Result<&'static Cuda, FabricError> {
        let c = cuda()?;
        if off.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(FabricError::Memory(
                "cuda",
                format!(
                    "copy of {n} bytes at {off} outside a {}-byte buffer",
                    self.len
                ),
            ));
        }
        // SAFETY: ctx is the primary context retained for this buffer's lifetime.
        check("cuCtxSetCurrent", unsafe { (c.ctx_set)(self.ctx) })?;
        Ok(c)
    }

    /// Copies `src` into the buffer at `off` (`cuMemcpyHtoD`, synchronous).
    pub fn write_at(&self, off: usize, src: &[u8]) -> Result<(), FabricError> {
        let c = self.enter(off, src.len())?;
        // SAFETY: the device range was checked above; src is valid for its length.
        check("cuMemcpyHtoD_v2", unsafe {
            (c.htod)(self.ptr + off as u64, src.as_ptr().cast(), src.len())
        })
    }

    /// Copies the buffer's bytes at `off` into `dst`, after every pending operation
    /// of the context finished (`cuCtxSynchronize`, then `cuMemcpyDtoH`).
    pub fn read_at(&self, off: usize, dst: &mut [u8]) -> Result<(), FabricError> {
        let c = self.enter(off, dst.len())?;
        // SAFETY: the context is current; the device range was checked above and
        // dst is valid for writes of its length.
        unsafe {
            check("cuCtxSynchronize", (c.ctx_sync)())?;
            check(
                "cuMemcpyDtoH_v2",
                (c.dtoh)(dst.as_mut_ptr().cast(), self.ptr + off as u64, dst.len()),
            )
        }
    }
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        if let Ok(c) = cuda() {
            let mut ctx: CuContext = std::ptr::null_mut();
            // SAFETY: the allocation came from this device's primary context, which we
            // retained in alloc and release here after freeing.
            unsafe {
                if (c.ctx_retain)(&mut ctx, self.device) == 0 {
                    (c.ctx_set)(ctx);
                    (c.mem_free)(self.ptr);
                    (c.ctx_release)(self.device);
                }
                (c.ctx_release)(self.device);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn missing_driver_gives_a_reason() {
        match super::available() {
            Ok(()) => {}
            Err(e) => assert!(e.to_string().contains("cuda"), "{e}"),
        }
    }
}
