//! The KV-path part of `fabric check`: what NIXL offers on the node (version,
//! backends, the UCX it loads and its transports, telemetry) and the serving
//! processes' KV-relevant configuration: UCX_* / FI_* / NIXL_* overrides, variables
//! vLLM's NixlConnector ignores, and UCX chosen over EFA without an EFA-capable UCX.

use servescope_proto::v1::{FabricCheckResponse, NixlNodeCheck, ServingProcess};

use super::check::{f, Finding, Severity};

/// The NixlConnector's backends of a process: `kv_connector_extra_config.backends` of
/// its `--kv-transfer-config` (command line) or VLLM_KV_TRANSFER_CONFIG, else UCX
/// (the connector's default). None when the process configures no NixlConnector.
pub fn connector_backends(p: &ServingProcess) -> Option<Vec<String>> {
    let from_cmdline = p.cmdline.find("--kv-transfer-config").and_then(|i| {
        let rest = &p.cmdline[i..];
        let start = rest.find('{')?;
        let mut depth = 0usize;
        for (j, c) in rest[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(rest[start..start + j + 1].to_string());
                    }
                }
                _ => {}
            }
        }
        None
    });
    let text = from_cmdline.or_else(|| p.env.get("VLLM_KV_TRANSFER_CONFIG").cloned())?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    if !v["kv_connector"]
        .as_str()
        .is_some_and(|c| c.contains("Nixl"))
    {
        return None;
    }
    let list = v["kv_connector_extra_config"]["backends"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec!["UCX".to_string()]);
    Some(list)
}

fn who(p: &ServingProcess) -> String {
    format!(
        "pid {} ({})",
        p.pid,
        p.cmdline.chars().take(80).collect::<String>()
    )
}

fn nixl_for(c: &FabricCheckResponse, pid: u32) -> Option<&NixlNodeCheck> {
    c.nixl
        .iter()
        .find(|n| n.pids.contains(&pid))
        .or_else(|| c.nixl.first())
}

/// Findings about NIXL and the KV path on one node; `efa` names its EFA devices.
pub fn judge(efa: &[String], c: &FabricCheckResponse) -> Vec<Finding> {
    use Severity::*;
    let mut out = Vec::new();
    for n in &c.nixl {
        out.extend(super::nixl_telemetry::judge(n));
        if !n.available {
            out.push(f(Warn, format!("NIXL not available with {}", n.python), n.detail.clone(), "install the engine's NIXL (pip install nixl-cu13 / nixl-cu12) in the serving environment"));
            continue;
        }
        out.push(f(
            Info,
            format!("NIXL {} (backends: {})", n.version, n.backends.join(", ")),
            format!(
                "{}; UCX {} ({}); UCX transports: {}",
                n.python,
                n.ucx_version,
                n.ucx_path,
                n.ucx_modules.join(", ")
            ),
            "",
        ));
        for e in &n.backend_errors {
            let sev = if !efa.is_empty() && e.starts_with("LIBFABRIC") {
                Warn
            } else {
                Info
            };
            out.push(f(
                sev,
                "NIXL backend unusable",
                e.clone(),
                "LIBFABRIC needs libfabric.so.1 on the loader path (EFA: /opt/amazon/efa/lib)",
            ));
        }
        out.push(f(Info, "NIXL telemetry", n.telemetry.clone(), if n.telemetry.starts_with("off") { "set NIXL_TELEMETRY_ENABLE=y (and NIXL_TELEMETRY_DIR) in the serving environment to export NIXL's own counters" } else { "" }));
    }
    for p in &c.processes {
        let overrides: Vec<String> = p
            .env
            .iter()
            .filter(|(k, _)| ["UCX_", "FI_", "NIXL_"].iter().any(|x| k.starts_with(x)))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !overrides.is_empty() {
            out.push(f(
                Info,
                format!("{}: KV-relevant overrides", who(p)),
                overrides.join(" "),
                "",
            ));
        }
        let backends = connector_backends(p);
        if let (Some(v), Some(list)) = (p.env.get("NIXL_BACKEND"), &backends) {
            out.push(f(Warn, format!("{}: NIXL_BACKEND={v} is ignored by vLLM's NixlConnector", who(p)), format!("NIXL_BACKEND={v}; the connector uses {}", list.join(", ")), format!(r#"set the backend in --kv-transfer-config: "kv_connector_extra_config": {{"backends": ["{v}"]}}"#)));
        }
        let uses_ucx = backends
            .as_ref()
            .is_some_and(|b| b.iter().any(|x| x == "UCX"));
        if !efa.is_empty() && uses_ucx {
            if let Some(n) = nixl_for(c, p.pid).filter(|n| n.available) {
                if !n.ucx_modules.iter().any(|m| m.contains("efa")) {
                    out.push(f(Error, format!("{}: UCX over EFA without an EFA-capable UCX", who(p)), format!("NixlConnector backend UCX; EFA devices {}; UCX {} ({}) transports: {}", efa.join(", "), n.ucx_version, n.ucx_path, n.ucx_modules.join(", ")), r#"KV moves over TCP: use NIXL's LIBFABRIC backend ("kv_connector_extra_config": {"backends": ["LIBFABRIC"]}) or a UCX ≥ 1.19 built with EFA"#));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_(cmdline: &str, env: &[(&str, &str)]) -> ServingProcess {
        ServingProcess {
            pid: 42,
            cmdline: cmdline.into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn nixl(modules: &[&str]) -> NixlNodeCheck {
        NixlNodeCheck {
            python: "/v/bin/python (the Python of process 42)".into(),
            pids: vec![42],
            available: true,
            version: "nixl_cu13 1.5.1".into(),
            backends: vec!["UCX".into()],
            backend_errors: vec!["LIBFABRIC: plugin did not load: libfabric.so.1".into()],
            ucx_version: "1.23.0".into(),
            ucx_modules: modules.iter().map(|s| s.to_string()).collect(),
            telemetry: "off (NIXL_TELEMETRY_ENABLE not set in any serving process)".into(),
            ..Default::default()
        }
    }

    #[test]
    fn connector_backends_from_cmdline_or_env() {
        let p = proc_(
            r#"vllm serve m --kv-transfer-config {"kv_connector":"NixlConnector","kv_role":"kv_both","kv_connector_extra_config":{"backends":["LIBFABRIC"]}} --port 8000"#,
            &[],
        );
        assert_eq!(connector_backends(&p), Some(vec!["LIBFABRIC".to_string()]));
        let q = proc_(
            "vllm serve m",
            &[(
                "VLLM_KV_TRANSFER_CONFIG",
                r#"{"kv_connector":"NixlConnector"}"#,
            )],
        );
        assert_eq!(connector_backends(&q), Some(vec!["UCX".to_string()]));
        assert_eq!(connector_backends(&proc_("vllm serve m", &[])), None);
    }

    #[test]
    fn efa_node_with_ucx_connector_and_no_efa_transport_and_ignored_nixl_backend() {
        let c = FabricCheckResponse {
            processes: vec![proc_(
                r#"vllm serve m --kv-transfer-config {"kv_connector":"NixlConnector"}"#,
                &[("NIXL_BACKEND", "LIBFABRIC"), ("UCX_TLS", "all")],
            )],
            nixl: vec![nixl(&["cma", "cuda", "ib"])],
            ..Default::default()
        };
        let fs = judge(&["rdmap16s27".to_string()], &c);
        let t: Vec<&str> = fs.iter().map(|f| f.title.as_str()).collect();
        assert!(
            t.iter()
                .any(|x| x.contains("UCX over EFA without an EFA-capable UCX")),
            "{t:?}"
        );
        assert!(
            t.iter()
                .any(|x| x.contains("NIXL_BACKEND=LIBFABRIC is ignored")),
            "{t:?}"
        );
        assert!(
            t.iter().any(|x| x.contains("KV-relevant overrides")),
            "{t:?}"
        );
        assert!(
            t.iter().any(|x| x.starts_with("NIXL nixl_cu13 1.5.1")),
            "{t:?}"
        );
        let lf = fs
            .iter()
            .find(|f| f.title == "NIXL backend unusable")
            .expect("libfabric");
        assert_eq!(lf.severity, Severity::Warn);
        // With an EFA-capable UCX, or off EFA, no error.
        let good = FabricCheckResponse {
            nixl: vec![nixl(&["cuda", "ib", "ib_efa"])],
            ..c.clone()
        };
        assert!(judge(&["rdmap16s27".to_string()], &good)
            .iter()
            .all(|f| f.severity != Severity::Error));
        assert!(judge(&[], &c).iter().all(|f| f.severity != Severity::Error));
    }

    #[test]
    fn nixl_missing_is_a_warning_with_the_reason() {
        let c = FabricCheckResponse {
            nixl: vec![NixlNodeCheck {
                python: "/usr/bin/python3 (python3 on PATH)".into(),
                detail: "NIXL not available on this node (NIXL not importable (...))".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let fs = judge(&[], &c);
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].severity, Severity::Warn);
        assert!(fs[0].evidence.contains("not importable"));
    }
}
