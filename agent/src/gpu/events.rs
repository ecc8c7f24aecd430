//! NVML event waiter for critical XID errors. `EventSet::wait` blocks, so it has its
//! own thread; it wakes every second to check for shutdown.

use std::sync::Arc;

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use servescope_proto::v1::{sample, Event};

use crate::clock::now_ns;
use crate::collector::Shutdown;
use crate::ring::Ring;

/// Starts the XID watcher. Returns a note when events cannot be registered (e.g.
/// inside some containers), and no thread.
pub fn spawn_xid_watcher(
    nvml: Arc<Nvml>,
    count: u32,
    ring: Arc<Ring>,
    shutdown: Shutdown,
) -> Result<std::thread::JoinHandle<()>, String> {
    // Probe registration here so the caller learns of failure synchronously.
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let h = std::thread::Builder::new()
        .name("nvml-events".into())
        .spawn(move || {
            // register_events consumes the set and does not give it back on failure,
            // so a failure rebuilds the set from the devices that registered.
            let build = |indices: &[u32]| -> Result<nvml_wrapper::EventSet<'_>, String> {
                let mut set = nvml.create_event_set().map_err(|e| {
                    format!("cannot create NVML event set: {}", super::describe(&e))
                })?;
                for &i in indices {
                    let dev = nvml.device_by_index(i).map_err(|e| super::describe(&e))?;
                    set = dev
                        .register_events(EventTypes::CRITICAL_XID_ERROR, set)
                        .map_err(|e| super::describe(&e.error))?;
                }
                Ok(set)
            };
            let mut good: Vec<u32> = Vec::new();
            let mut last_err = String::from("no GPUs");
            for i in 0..count {
                let mut try_idx = good.clone();
                try_idx.push(i);
                match build(&try_idx) {
                    Ok(_) => good.push(i),
                    Err(e) => last_err = format!("GPU {i}: {e}"),
                }
            }
            let set = match (good.is_empty(), build(&good)) {
                (false, Ok(s)) => s,
                (_, Err(e)) => {
                    let _ = tx.send(Err(format!("NVML XID events unavailable: {e}")));
                    return;
                }
                (true, _) => {
                    let _ = tx.send(Err(format!("NVML XID events unavailable: {last_err}")));
                    return;
                }
            };
            let _ = tx.send(Ok(()));
            while !shutdown.is_triggered() {
                match set.wait(1000) {
                    Ok(ev) => {
                        let index = ev.device.index().ok();
                        let pci = ev.device.pci_info().map(|p| p.bus_id).unwrap_or_default();
                        ring.push(
                            now_ns(),
                            0,
                            sample::Data::Event(Event {
                                kind: "xid".into(),
                                source: "nvml".into(),
                                gpu_index: index,
                                pci_bus_id: pci,
                                xid: match ev.event_data {
                                    Some(XidError::Value(v)) => Some(v),
                                    _ => None,
                                },
                                message: format!("{:?}", ev.event_type),
                            }),
                        );
                    }
                    Err(NvmlError::Timeout) => {}
                    Err(e) => {
                        ring.push(
                            now_ns(),
                            0,
                            sample::Data::Event(Event {
                                kind: "collector_error".into(),
                                source: "nvml".into(),
                                message: format!("event wait failed: {}", super::describe(&e)),
                                ..Default::default()
                            }),
                        );
                        if shutdown.sleep(std::time::Duration::from_secs(5)) {
                            break;
                        }
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start NVML event thread: {e}"))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(h),
        Ok(Err(why)) => {
            let _ = h.join();
            Err(why)
        }
        Err(_) => Err("NVML event thread ended early".into()),
    }
}
