//! Kernel log watcher for `NVRM: Xid` lines (/dev/kmsg). The parser is pure and
//! bounded ([`parse`]); the reader seeks to the end at start so only new records are
//! reported.

pub mod parse;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use servescope_proto::v1::{sample, Event};

use crate::clock::now_ns;
use crate::collect::{EventSource, RunContext};
pub use parse::{gpu_for_pci, parse_xid, XidLine, MAX_RECORD};

/// How long one wait for a record lasts before shutdown is checked again.
const POLL_WAIT: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 500_000_000,
};

/// Opens /dev/kmsg at its end. Err: why it is not readable (not root, no device).
pub fn open() -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")?;
    // /dev/kmsg reads from the oldest record kept unless told to start at the end.
    let _ = f.seek(SeekFrom::End(0));
    Ok(f)
}

/// Follows an opened /dev/kmsg, pushing Xid events.
pub struct KmsgSource {
    file: File,
    /// NVML index and PCI bus id of each GPU, to name the GPU of an Xid.
    gpus: Vec<(u32, String)>,
}

impl KmsgSource {
    pub fn new(file: File, gpus: Vec<(u32, String)>) -> Self {
        KmsgSource { file, gpus }
    }
}

impl EventSource for KmsgSource {
    fn name(&self) -> &'static str {
        "kmsg"
    }

    fn run(self: Box<Self>, ctx: RunContext) {
        let KmsgSource { mut file, gpus } = *self;
        let mut buf = vec![0u8; MAX_RECORD];
        while !ctx.shutdown.is_triggered() {
            let mut fds = [PollFd::new(&file, PollFlags::IN)];
            if !matches!(poll(&mut fds, Some(&POLL_WAIT)), Ok(n) if n > 0) {
                continue;
            }
            // One read returns one record.
            match file.read(&mut buf) {
                Ok(0) => continue,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    if let Some(x) = parse_xid(&rec) {
                        ctx.ring.push(
                            now_ns(),
                            0,
                            sample::Data::Event(Event {
                                kind: "xid".into(),
                                source: "kmsg".into(),
                                gpu_index: gpu_for_pci(&x.pci, &gpus),
                                pci_bus_id: x.pci.clone(),
                                xid: Some(x.xid),
                                message: x.rest,
                            }),
                        );
                    }
                }
                // EPIPE: records were overwritten before we read them; go on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => {
                    ctx.shutdown.sleep(Duration::from_secs(1));
                }
            }
        }
    }
}
