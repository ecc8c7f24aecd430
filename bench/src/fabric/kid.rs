//! A child process of the benchmark, killed (and reaped) when dropped and when the
//! benchmark dies, with a bounded wait.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A child process, killed (and reaped) when dropped, and when this process dies.
pub(crate) struct Kid(pub(crate) Child, String);

impl Kid {
    pub(crate) fn spawn(mut cmd: Command, what: &str) -> Result<Kid> {
        // SAFETY: prctl is async-signal-safe and the closure touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {what}"))?;
        Ok(Kid(child, what.to_string()))
    }

    pub(crate) fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        let t = Instant::now();
        loop {
            if let Some(st) = self.0.try_wait()? {
                return Ok(st);
            }
            if t.elapsed() > limit {
                let _ = self.0.kill();
                bail!("{} still running after {limit:?}: killed", self.1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}
