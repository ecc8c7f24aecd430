use super::*;

#[test]
fn no_token_is_refused_by_default() {
    let args = AgentArgs::default();
    assert!(matches!(
        AgentConfig::from_args(&args),
        Err(ConfigError::NoToken)
    ));
}

#[test]
fn insecure_only_on_loopback() {
    let mut args = AgentArgs {
        insecure_no_auth: true,
        ..Default::default()
    };
    // Default listen is 0.0.0.0: refused.
    assert!(matches!(
        AgentConfig::from_args(&args),
        Err(ConfigError::InsecureOffLoopback { .. })
    ));
    args.listen = Some("127.0.0.1:0".parse().unwrap());
    let cfg = AgentConfig::from_args(&args).unwrap();
    assert!(cfg.token.is_none());
    args.metrics_listen = Some("0.0.0.0:9478".into());
    assert!(AgentConfig::from_args(&args).is_err());
}

#[test]
fn file_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    write_mode(&tok, "s3cret\n", 0o600);
    let cfgp = dir.path().join("agent.toml");
    std::fs::write(
        &cfgp,
        format!(
            "listen = \"127.0.0.1:7000\"\nsample_interval_ms = 250\ntoken_file = {:?}\nsysfs_root = \"/tmp/x\"\n",
            tok
        ),
    )
    .unwrap();
    let args = AgentArgs {
        config: Some(cfgp.clone()),
        sample_interval_ms: Some(50),
        ..Default::default()
    };
    let cfg = AgentConfig::from_args(&args).unwrap();
    assert_eq!(cfg.listen.port(), 7000);
    assert_eq!(cfg.sample_interval, Duration::from_millis(50));
    assert_eq!(cfg.token.as_deref(), Some("s3cret"));
    assert_eq!(cfg.sysfs_root, PathBuf::from("/tmp/x"));
    assert_eq!(cfg.buffer_horizon, Duration::from_secs(600));

    std::fs::write(&cfgp, "listen = 12\n").unwrap();
    let err = AgentConfig::from_args(&args).unwrap_err().to_string();
    assert!(err.contains("agent.toml"), "{err}");
    std::fs::write(&cfgp, "bogus_key = 1\n").unwrap();
    let err = AgentConfig::from_args(&args).unwrap_err().to_string();
    assert!(err.contains("bogus_key"), "{err}");
}

#[test]
fn shipped_example_config_parses() {
    let text = include_str!("../../../deploy/systemd/agent.toml.example");
    let f: FileConfig = toml::from_str(text).expect("deploy/systemd/agent.toml.example is valid");
    assert!(f.listen.is_some() && f.token_file.is_some());
}

#[test]
fn zero_interval_refused() {
    let args = AgentArgs {
        insecure_no_auth: true,
        listen: Some("127.0.0.1:0".parse().unwrap()),
        sample_interval_ms: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        AgentConfig::from_args(&args),
        Err(ConfigError::Zero(_))
    ));
}

/// Writes `text` to `path` with permission bits `mode`.
fn write_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn token_file_readable_by_everyone_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    let args = AgentArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        token_file: Some(tok.clone()),
        ..Default::default()
    };
    for mode in [0o644, 0o604, 0o602, 0o666] {
        write_mode(&tok, "s3cret\n", mode);
        let err = AgentConfig::from_args(&args).unwrap_err();
        assert!(
            matches!(err, ConfigError::TokenExposed { mode: m, .. } if m == mode),
            "{mode:o}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&tok.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("mode {mode:04o}")), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
    }
    for mode in [0o600, 0o400, 0o640] {
        write_mode(&tok, "s3cret\n", mode);
        let cfg = AgentConfig::from_args(&args).unwrap();
        assert_eq!(cfg.token.as_deref(), Some("s3cret"));
    }
}

#[test]
fn plaintext_token_on_metrics_off_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    write_mode(&tok, "s3cret\n", 0o600);
    let mut args = AgentArgs {
        token_file: Some(tok.clone()),
        metrics_listen: Some("0.0.0.0:9478".into()),
        ..Default::default()
    };
    let err = AgentConfig::from_args(&args).unwrap_err();
    assert!(
        matches!(err, ConfigError::PlaintextTokenOffLoopback { addr } if addr.port() == 9478),
        "{err}"
    );
    assert!(
        err.to_string().contains("--metrics-allow-plaintext-token"),
        "{err}"
    );
    // Loopback /metrics, or the flag, or TLS: accepted.
    args.metrics_listen = Some("127.0.0.1:9478".into());
    assert!(AgentConfig::from_args(&args).is_ok());
    args.metrics_listen = Some("[::1]:9478".into());
    assert!(AgentConfig::from_args(&args).is_ok());
    args.metrics_listen = Some("0.0.0.0:9478".into());
    args.metrics_allow_plaintext_token = true;
    assert!(
        AgentConfig::from_args(&args)
            .unwrap()
            .metrics_allow_plaintext_token
    );
    args.metrics_allow_plaintext_token = false;
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, "cert").unwrap();
    std::fs::write(&key, "key").unwrap();
    args.tls_cert = Some(cert);
    args.tls_key = Some(key);
    assert!(AgentConfig::from_args(&args).unwrap().tls.is_some());
    // "off" is never refused.
    args.tls_cert = None;
    args.tls_key = None;
    args.metrics_listen = Some("off".into());
    assert!(AgentConfig::from_args(&args).is_ok());
}

#[test]
fn client_ca_needs_tls_and_limits_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "ca").unwrap();
    let mut args = AgentArgs {
        insecure_no_auth: true,
        listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_client_ca: Some(ca),
        ..Default::default()
    };
    assert!(matches!(
        AgentConfig::from_args(&args),
        Err(ConfigError::ClientCaWithoutTls)
    ));
    args.tls_client_ca = None;
    let cfg = AgentConfig::from_args(&args).unwrap();
    assert_eq!(cfg.grpc_limits.max_message_bytes, 1 << 20);
    assert_eq!(cfg.grpc_limits.max_streams_per_client, 32);
    args.grpc_max_message_kib = Some(16);
    args.grpc_max_streams_per_client = Some(3);
    let cfg = AgentConfig::from_args(&args).unwrap();
    assert_eq!(cfg.grpc_limits.max_message_bytes, 16 << 10);
    assert_eq!(cfg.grpc_limits.max_streams_per_client, 3);
    args.grpc_max_streams_per_client = Some(0);
    assert!(matches!(
        AgentConfig::from_args(&args),
        Err(ConfigError::Zero("grpc_max_streams_per_client"))
    ));
}
