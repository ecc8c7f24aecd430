//! Captures UCX's own log for the life of one probe endpoint: `PROTO_INFO=y` on the
//! probe's context makes UCX print the protocol it selects per operation and memory
//! type, and `LOG_LEVEL=info` the endpoint lane configuration; both go to UCX's log,
//! which libucs's `ucs_global_opts_set_value("LOG_FILE", ...)` plus a log re-init
//! points at a private file here. The previous LOG_FILE/LOG_LEVEL come back on drop.
//! The log is process-wide (per UCX build): endpoints of one process share one
//! capture, and the last one to go restores the settings.

use std::ffi::{c_char, CStr, CString};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::loader::{LogCtl, Ucp};

/// At most this much of the log is read back.
const MAX_LOG_BYTES: u64 = 4 << 20;

struct Shared {
    log: &'static LogCtl,
    path: PathBuf,
    saved: Vec<(CString, CString)>,
}

/// Live captures, one per UCX build (its LogCtl); weak so the last user restores.
static LIVE: Mutex<Vec<std::sync::Weak<Shared>>> = Mutex::new(Vec::new());

pub(super) struct Capture {
    shared: Arc<Shared>,
}

fn get(log: &LogCtl, name: &CStr) -> Option<CString> {
    let mut buf = [0 as c_char; 4096];
    // SAFETY: buf is writable for its length; UCX NUL-terminates within it.
    let st = unsafe { (log.get_value)(name.as_ptr(), buf.as_mut_ptr(), buf.len()) };
    if st != 0 {
        return None;
    }
    // SAFETY: NUL-terminated by ucs_global_opts_get_value (checked status).
    Some(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_owned())
}

fn set(log: &LogCtl, name: &CStr, value: &CStr) -> bool {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    unsafe { (log.set_value)(name.as_ptr(), value.as_ptr()) == 0 }
}

fn reopen(log: &LogCtl) {
    // SAFETY: flushes and closes UCX's log stream, then opens it again from the
    // global options; nothing else of this process logs through this UCX meanwhile
    // (one probe at a time).
    unsafe {
        if let Some(f) = log.log_flush {
            f();
        }
        (log.log_cleanup)();
        (log.log_init)();
    }
}

impl Capture {
    /// Starts capturing this UCX's log into a private file; None (with the reason)
    /// when the library lacks the log control or the file cannot be made.
    pub fn start(ucp: &'static Ucp) -> Result<Capture, String> {
        let log = ucp.log.as_ref().ok_or("libucs log control not exported")?;
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|w| w.strong_count() > 0);
        if let Some(shared) = live
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .find(|s| std::ptr::eq(s.log, log))
        {
            return Ok(Capture { shared });
        }
        let path = std::env::temp_dir().join(format!(
            "servescope-ucx-{}-{}.log",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cpath = CString::new(path.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
        let mut saved: Vec<(CString, CString)> = Vec::new();
        for (name, value) in [(c"LOG_FILE", cpath.as_c_str()), (c"LOG_LEVEL", c"info")] {
            let old = get(log, name).unwrap_or_default();
            if !set(log, name, value) {
                for (n, v) in &saved {
                    set(log, n, v);
                }
                return Err(format!("UCX refused {name:?}={value:?}"));
            }
            saved.push((name.to_owned(), old));
        }
        reopen(log);
        let shared = Arc::new(Shared { log, path, saved });
        live.push(Arc::downgrade(&shared));
        Ok(Capture { shared })
    }

    /// What UCX logged so far (bounded).
    pub fn text(&self) -> String {
        if let Some(f) = self.shared.log.log_flush {
            // SAFETY: flushes UCX's log stream.
            unsafe { f() };
        }
        let mut s = String::new();
        if let Ok(f) = std::fs::File::open(&self.shared.path) {
            let mut b = Vec::new();
            let _ = f.take(MAX_LOG_BYTES).read_to_end(&mut b);
            s = String::from_utf8_lossy(&b).into_owned();
        }
        s
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for (n, v) in self.saved.iter().rev() {
            set(self.log, n, v);
        }
        reopen(self.log);
        let _ = std::fs::remove_file(&self.path);
    }
}
