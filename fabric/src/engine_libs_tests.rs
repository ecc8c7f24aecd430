use super::*;

const MAPS: &str = include_str!("../tests/data/maps_nixl.txt");

#[test]
fn maps_of_a_nixl_process_name_the_bundled_ucx() {
    let libs = parse_maps(MAPS);
    let ucp: Vec<&str> = libs
        .iter()
        .filter(|(k, _)| *k == LibKind::Ucp)
        .map(|(_, p)| p.as_str())
        .collect();
    assert_eq!(
        ucp,
        ["/work/wt/nixl/target/nixl-venv/lib/python3.11/site-packages/nixl_cu13.libs/libucp-b39b3ed9.so.0.0.0"]
    );
    // uct/ucs/ucm and the ucx/ modules are not libucp.
    assert!(libs.iter().all(|(_, p)| !p.contains("libuct")));
}

#[test]
fn maps_with_system_libraries() {
    let maps = "7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libucp.so.0.0.0
7f01-7f02 r--p 0 08:01 1 /usr/lib/x86_64-linux-gnu/libucp.so.0.0.0
7f02-7f03 r-xp 0 08:01 2 /opt/amazon/efa/lib/libfabric.so.1.25.0
7f03-7f04 r-xp 0 08:01 3 /usr/lib/libucs.so.0
7f04-7f05 rw-p 0 00:00 0
garbage
";
    let l = parse_maps(maps);
    assert_eq!(
        l,
        vec![
            (
                LibKind::Ucp,
                "/usr/lib/x86_64-linux-gnu/libucp.so.0.0.0".to_string()
            ),
            (
                LibKind::Libfabric,
                "/opt/amazon/efa/lib/libfabric.so.1.25.0".to_string()
            ),
        ]
    );
}

#[test]
fn cuda_transport_from_a_module_listing() {
    let wheel = [
        "libuct_cma.so.0.0.0",
        "libuct_cuda.so.0.0.0",
        "libucm_cuda.so.0.0.0",
        "libuct_ib_efa.so.0.0.0",
    ];
    assert!(has_cuda_transport(&wheel));
    let debian = [
        "libuct_cma.so.0",
        "libuct_ib.so.0",
        "libuct_rdmacm.so.0",
        "libucm_cuda.so.0",
    ];
    assert!(!has_cuda_transport(&debian));
    assert!(has_cuda_transport(&["libuct_cuda_gdrcopy.so.0"]));
    assert!(!has_cuda_transport::<&str>(&[]));
}

#[test]
fn venv_search_finds_the_wheel_and_its_cuda_modules() {
    let d = tempfile::tempdir().expect("tempdir");
    let libs = d.path().join("lib/python3.12/site-packages/nixl_cu13.libs");
    std::fs::create_dir_all(libs.join("ucx")).expect("mkdir");
    std::fs::write(libs.join("libucp-b39b3ed9.so.0.0.0"), b"").expect("write");
    let found = venv_ucx(d.path()).expect("found");
    assert!(found.ends_with("nixl_cu13.libs/libucp-b39b3ed9.so.0.0.0"));
    assert!(!ucx_has_cuda(&found));
    std::fs::write(libs.join("ucx/libuct_cuda.so.0.0.0"), b"").expect("write");
    assert!(ucx_has_cuda(&found));
    let none = tempfile::tempdir().expect("tempdir");
    let e = venv_ucx(none.path()).expect_err("no wheel");
    assert!(e.to_string().contains("no NIXL wheel"), "{e}");
}

#[test]
fn resolution_prefers_the_explicit_library() {
    let t = ProbeTransport {
        library: "ucx".into(),
        ucx_lib: "/x/libucp.so.0".into(),
        like_pid: 1,
        ..Default::default()
    };
    assert_eq!(
        resolve_ucx(&t).expect("ok").as_deref(),
        Some("/x/libucp.so.0")
    );
    assert_eq!(resolve_ucx(&ProbeTransport::default()).expect("ok"), None);
    let gone = ProbeTransport {
        like_pid: u32::MAX,
        ..Default::default()
    };
    assert!(resolve_ucx(&gone).is_err());
}
