//! NVML event waiter for critical XID errors. `EventSet::wait` blocks, so it has its
//! own thread; it wakes every second to check for shutdown.

use std::sync::Arc;

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{EventSet, Nvml};
use servescope_proto::v1::{sample, Event};

use super::describe;
use crate::clock::now_ns;
use crate::collect::{EventSource, RunContext};
use crate::ring::Ring;

/// An event set registered for critical XID errors on `indices`.
fn event_set<'n>(nvml: &'n Nvml, indices: &[u32]) -> Result<EventSet<'n>, String> {
    let mut set = nvml
        .create_event_set()
        .map_err(|e| format!("cannot create NVML event set: {}", describe(&e)))?;
    for &i in indices {
        let dev = nvml.device_by_index(i).map_err(|e| describe(&e))?;
        set = dev
            .register_events(EventTypes::CRITICAL_XID_ERROR, set)
            .map_err(|e| describe(&e.error))?;
    }
    Ok(set)
}

/// The XID watcher: the GPUs whose events could be registered.
pub struct XidSource {
    nvml: Arc<Nvml>,
    gpus: Vec<u32>,
}

impl XidSource {
    /// Finds the GPUs among `0..count` whose XID events can be registered. Err: why
    /// none can (e.g. inside some containers).
    pub fn new(nvml: Arc<Nvml>, count: u32) -> Result<XidSource, String> {
        // register_events consumes the set and does not give it back on failure,
        // so each try builds the set again from the devices that registered.
        let mut good: Vec<u32> = Vec::new();
        let mut last_err = String::from("no GPUs");
        for i in 0..count {
            let mut try_idx = good.clone();
            try_idx.push(i);
            match event_set(&nvml, &try_idx) {
                Ok(_) => good.push(i),
                Err(e) => last_err = format!("GPU {i}: {e}"),
            }
        }
        if good.is_empty() {
            return Err(format!("NVML XID events unavailable: {last_err}"));
        }
        Ok(XidSource { nvml, gpus: good })
    }
}

fn push(ring: &Ring, event: Event) {
    ring.push(now_ns(), 0, sample::Data::Event(event));
}

/// A `collector_error` event from NVML with `message`.
fn push_error(ring: &Ring, message: String) {
    push(
        ring,
        Event {
            kind: "collector_error".into(),
            source: "nvml".into(),
            message,
            ..Default::default()
        },
    );
}

impl EventSource for XidSource {
    fn name(&self) -> &'static str {
        "nvml-events"
    }

    fn run(self: Box<Self>, ctx: RunContext) {
        let set = match event_set(&self.nvml, &self.gpus) {
            Ok(s) => s,
            Err(e) => {
                push_error(&ctx.ring, format!("NVML XID events unavailable: {e}"));
                return;
            }
        };
        while !ctx.shutdown.is_triggered() {
            match set.wait(1000) {
                Ok(ev) => {
                    let index = ev.device.index().ok();
                    let pci = ev.device.pci_info().map(|p| p.bus_id).unwrap_or_default();
                    push(
                        &ctx.ring,
                        Event {
                            kind: "xid".into(),
                            source: "nvml".into(),
                            gpu_index: index,
                            pci_bus_id: pci,
                            xid: match ev.event_data {
                                Some(XidError::Value(v)) => Some(v),
                                _ => None,
                            },
                            message: format!("{:?}", ev.event_type),
                        },
                    );
                }
                Err(NvmlError::Timeout) => {}
                Err(e) => {
                    push_error(&ctx.ring, format!("event wait failed: {}", describe(&e)));
                    if ctx.shutdown.sleep(std::time::Duration::from_secs(5)) {
                        break;
                    }
                }
            }
        }
    }
}
