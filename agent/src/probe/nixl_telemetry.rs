//! NIXL's own telemetry for `fabric check`: which serving processes export it to
//! shared-memory buffers (NIXL_TELEMETRY_ENABLE with the buffer exporter and
//! NIXL_TELEMETRY_DIR) and, only when asked (reading consumes the engine's events),
//! every buffer read with the reader of the engine's NIXL wheel and summed up.

use std::path::{Path, PathBuf};

use servescope_fabric::nixl::telemetry::Times;
use servescope_fabric::nixl::telemetry_read::{candidate_sites, BufferRead, Reader, READ_WAIT};
use servescope_proto::v1::{
    NixlNodeCheck, NixlTelemetryBuffer, NixlTelemetryTimes, ServingProcess,
};

/// Whether a process turns NIXL's telemetry on.
pub fn telemetry_on(p: &ServingProcess) -> bool {
    p.env.get("NIXL_TELEMETRY_ENABLE").is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "y" | "yes" | "1" | "true" | "on"
        )
    })
}

/// Whether a process's telemetry goes to the shared-memory buffer exporter (NIXL's
/// default when NIXL_TELEMETRY_EXPORTER is unset or empty).
pub fn exports_to_buffer(p: &ServingProcess) -> bool {
    p.env
        .get("NIXL_TELEMETRY_EXPORTER")
        .is_none_or(|e| e.is_empty() || e.eq_ignore_ascii_case("buffer"))
}

/// The distinct buffer directories of the processes that export to buffers.
pub fn buffer_dirs(procs: &[&ServingProcess]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in procs {
        if !(telemetry_on(p) && exports_to_buffer(p)) {
            continue;
        }
        if let Some(d) = p.env.get("NIXL_TELEMETRY_DIR").filter(|d| !d.is_empty()) {
            let d = PathBuf::from(d);
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

fn times(t: &Times) -> NixlTelemetryTimes {
    NixlTelemetryTimes {
        count: t.count,
        avg_us: t.avg_us,
        p50_us: t.p50_us,
        p99_us: t.p99_us,
        max_us: t.max_us,
        decades: t.decades.to_vec(),
    }
}

/// One buffer read as its wire message.
pub fn to_msg(b: &BufferRead) -> NixlTelemetryBuffer {
    let mut m = NixlTelemetryBuffer {
        agent: b.agent.clone(),
        path: b.path.display().to_string(),
        ..Default::default()
    };
    match &b.result {
        Err(e) => m.error = e.clone(),
        Ok(s) => {
            m.events = s.events;
            m.errors = s.errors.clone().into_iter().collect();
            m.dropped = s.dropped;
            m.tx_bytes = s.tx_bytes;
            m.rx_bytes = s.rx_bytes;
            m.tx_requests = s.tx_requests;
            m.rx_requests = s.rx_requests;
            m.xfer_time = Some(times(&s.xfer));
            m.post_time = Some(times(&s.post));
            m.partial = s.partial_tail;
        }
    }
    m
}

/// Reads the buffers of `procs` into `c`, with the reader of the NIXL wheel those
/// processes map (else the one in `python`'s environment).
pub fn read_into(c: &mut NixlNodeCheck, python: &Path, procs: &[&ServingProcess]) {
    let dirs = buffer_dirs(procs);
    if dirs.is_empty() {
        c.telemetry_read_error = "no serving process exports NIXL telemetry to buffers \
            (NIXL_TELEMETRY_ENABLE=y with NIXL_TELEMETRY_DIR)"
            .into();
        return;
    }
    let libs = procs
        .iter()
        .flat_map(|p| p.loaded_libs.iter().map(String::as_str))
        .chain(std::iter::once(c.ucx_path.as_str()));
    let reader = match Reader::find(&candidate_sites(libs, Some(python))) {
        Ok(r) => r,
        Err(e) => {
            c.telemetry_read_error = e.to_string();
            return;
        }
    };
    let mut errors = Vec::new();
    for d in dirs {
        match reader.read_dir(&d, READ_WAIT) {
            Ok(bufs) if bufs.is_empty() => errors.push(format!("{}: no buffer files", d.display())),
            Ok(bufs) => c.telemetry_buffers.extend(bufs.iter().map(to_msg)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    c.telemetry_read_error = errors.join("; ");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::nixl_check::tests::proc_with;
    use servescope_fabric::nixl::telemetry;

    #[test]
    fn buffer_directories_of_processes_that_export_to_buffers() {
        let a = proc_with(&[("NIXL_TELEMETRY_ENABLE", "y"), ("NIXL_TELEMETRY_DIR", "/d")]);
        let b = proc_with(&[
            ("NIXL_TELEMETRY_ENABLE", "1"),
            ("NIXL_TELEMETRY_DIR", "/d"),
            ("NIXL_TELEMETRY_EXPORTER", "BUFFER"),
        ]);
        let prom = proc_with(&[
            ("NIXL_TELEMETRY_ENABLE", "y"),
            ("NIXL_TELEMETRY_DIR", "/p"),
            ("NIXL_TELEMETRY_EXPORTER", "prometheus"),
        ]);
        let off = proc_with(&[("NIXL_TELEMETRY_DIR", "/off")]);
        assert_eq!(
            buffer_dirs(&[&a, &b, &prom, &off]),
            vec![PathBuf::from("/d")]
        );
        let mut c = NixlNodeCheck::default();
        read_into(&mut c, Path::new("/nonexistent/bin/python"), &[&prom, &off]);
        assert!(
            c.telemetry_read_error
                .starts_with("no serving process exports"),
            "{c:?}"
        );
        assert!(c.telemetry_buffers.is_empty());
        // A directory but no reader anywhere: said so, nothing read.
        let mut c = NixlNodeCheck::default();
        read_into(&mut c, Path::new("/nonexistent/bin/python"), &[&a]);
        assert!(
            c.telemetry_read_error.contains("no NIXL telemetry_reader"),
            "{c:?}"
        );
    }

    #[test]
    fn a_buffer_summary_on_the_wire() {
        let text = include_str!("../../../fabric/tests/data/nixl_telemetry_initiator.txt");
        let s = telemetry::summarize(&telemetry::parse(text, false).expect("parse"));
        let m = to_msg(&BufferRead {
            agent: "servescope-1".into(),
            path: "/d/servescope-1".into(),
            result: Ok(s),
        });
        assert_eq!((m.tx_requests, m.rx_requests, m.events), (23, 10, 133));
        let x = m.xfer_time.expect("xfer");
        assert_eq!((x.count, x.p50_us, x.p99_us), (33, 74, 34868));
        assert_eq!(x.decades, vec![0, 24, 6, 0, 3, 0]);
        let bad = to_msg(&BufferRead {
            agent: "a".into(),
            path: "/d/a".into(),
            result: Err("the reader exited".into()),
        });
        assert_eq!(bad.error, "the reader exited");
        assert!(bad.xfer_time.is_none());
    }
}
