use super::*;

const HOST: &str = include_str!("../../tests/data/ucx_proto_info_host.txt");
const HOST_TCP: &str = include_str!("../../tests/data/ucx_proto_info_host_tcp.txt");
const V1_13: &str = include_str!("../../tests/data/ucx_proto_info_1_13.txt");

#[test]
fn host_capture_selects_cma_zero_copy_for_rma() {
    let info = parse(HOST);
    assert_eq!(info.version.as_deref(), Some("1.23.0"));
    assert!(info
        .library
        .as_deref()
        .is_some_and(|l| l.ends_with("nixl_cu13.libs/libucp-b39b3ed9.so.0.0.0")));
    assert_eq!(info.skipped_tables, 0);
    let put = info.selected_for(&Operation::Put, 1 << 20);
    assert!(!put.is_empty());
    for s in &put {
        assert_eq!(s.kind, ProtoKind::ZeroCopy, "{}", s.evidence());
        assert_eq!(s.lanes[0].transport, "cma");
        assert_eq!(s.lanes[0].device, "memory");
        assert_eq!(s.local_mem, "host");
        assert_eq!(s.remote_mem.as_deref(), Some("host"));
    }
    let get = info.selected_for(&Operation::Get, 4096);
    assert_eq!(get.len(), 1);
    assert_eq!(
        get[0].operation_text,
        "remote memory read by ucp_get*(multi) into host memory from host"
    );
    assert_eq!(get[0].kind, ProtoKind::ZeroCopy);
    assert!(info.emulated_over_tcp().is_empty());
}

#[test]
fn host_capture_active_message_ranges() {
    let info = parse(HOST);
    let am: Vec<_> = info
        .selections
        .iter()
        .filter(|s| s.operation_text == "active message by ucp_am_send*(multi) from host memory")
        .take(3)
        .collect();
    assert_eq!(am.len(), 3);
    assert_eq!(
        am[0].range,
        SizeRange {
            min: 0,
            max: Some(8184)
        }
    );
    assert_eq!(am[0].kind, ProtoKind::Short);
    assert_eq!(
        am[1].range,
        SizeRange {
            min: 8185,
            max: Some(65528)
        }
    );
    assert_eq!(am[1].kind, ProtoKind::ZeroCopy);
    assert_eq!(
        am[2].range,
        SizeRange {
            min: 65529,
            max: None
        }
    );
    assert_eq!(am[2].kind, ProtoKind::CopyIn);
    assert_eq!(am[2].config, "servescope-6558 self cfg#0");
}

#[test]
fn endpoint_config_lines() {
    let info = parse(HOST);
    assert_eq!(info.endpoint_configs.len(), 4);
    let c = &info.endpoint_configs[1];
    assert_eq!(c.name, "servescope-6558");
    assert_eq!(c.scope, "intra-node");
    assert_eq!(c.index, 1);
    let roles: Vec<&str> = c.groups.iter().map(|g| g.role.as_str()).collect();
    assert_eq!(roles, ["rma_am", "amo_am", "am", "ka"]);
    assert_eq!(c.group("am").len(), 2);
    assert_eq!(c.group("am")[1].transport, "cma");
    assert!(c.group("rma").is_empty());
}

#[test]
fn gpu_endpoint_config_line() {
    let line = "[1.0] [gpu:1:0]      ucp_worker.c:1997 UCX  INFO    agent-1 intra-node cfg#2 \
                rma_am(tcp/lo) amo_am(tcp/lo) device(cuda_ipc/cuda) am(tcp/lo cma/memory cuda_ipc/cuda) ka(tcp/lo)";
    let info = parse(line);
    let c = &info.endpoint_configs[0];
    assert_eq!(c.index, 2);
    assert_eq!(c.group("device")[0].transport, "cuda_ipc");
    assert_eq!(c.group("am").len(), 3);
}

#[test]
fn forced_tcp_capture_is_emulated() {
    let info = parse(HOST_TCP);
    assert_eq!(info.skipped_tables, 0);
    let em = info.emulated_over_tcp();
    assert!(!em.is_empty());
    assert!(em.iter().all(|s| s.operation == Operation::Get));
    assert_eq!(em[0].kind, ProtoKind::SoftwareEmulation);
    assert!(em[0].evidence().contains("software emulation | tcp/lo"));
    let put = info.selected_for(&Operation::Put, 1 << 20);
    let split = &put[0].lanes;
    assert_eq!(split.len(), 2);
    assert_eq!(split[0].share_pct, Some(52));
    assert_eq!(split[1].device, "eth0");
}

#[test]
fn ucx_1_13_layout() {
    let info = parse(V1_13);
    assert_eq!(info.skipped_tables, 0);
    let put: Vec<_> = info
        .selections
        .iter()
        .filter(|s| s.operation == Operation::Put)
        .collect();
    assert!(put.len() >= 4);
    assert_eq!(put[0].config, "0x5646f73fed10 ep_cfg[0]");
    assert_eq!(
        put[0].range,
        SizeRange {
            min: 0,
            max: Some(30306)
        }
    );
    assert_eq!(put[0].kind, ProtoKind::Short);
    assert_eq!(put[1].kind, ProtoKind::SoftwareEmulation);
    assert_eq!(
        put[3].range,
        SizeRange {
            min: 4 << 30,
            max: None
        }
    );
    assert_eq!(put[3].lanes[0].transport, "sysv");
    // Emulated over shared memory, not tcp.
    assert!(info.emulated_over_tcp().is_empty());
}

#[test]
fn gpu_tables_over_cuda_ipc_and_tcp() {
    let text = "\
+--------+-------------+-----------+
| a intra-node cfg#2               |
| remote memory write by ucp_put*(multi) from cuda/GPU0 to cuda/dev[1] |
+--------+-------------+-----------+
| Range  | Description | Config    |
+--------+-------------+-----------+
| 0..inf | zero-copy   | cuda_ipc/cuda |
+--------+-------------+-----------+
+--------+-------------+-----------+
| a intra-node cfg#2               |
| remote memory read by ucp_get*(multi) into cuda/GPU0 from cuda/dev[1] |
+--------+-------------+-----------+
| Range  | Description | Config    |
+--------+-------------+-----------+
| 0..inf | software emulation | tcp/lo |
+--------+-------------+-----------+
";
    let info = parse(text);
    assert_eq!(info.selections.len(), 2);
    let w = &info.selections[0];
    assert_eq!(w.local_mem, "cuda/GPU0");
    assert_eq!(w.remote_mem.as_deref(), Some("cuda/dev[1]"));
    assert!(w.touches_device_memory());
    let em = info.emulated_over_tcp();
    assert_eq!(em.len(), 1);
    assert_eq!(em[0].operation, Operation::Get);
    assert_eq!(em[0].local_mem, "cuda/GPU0");
}

#[test]
fn interleaved_sources_and_garbage() {
    let text = "\
[1] [h:1:0]   +----+----+----+
[1] [h:2:0]   +----+----+----+
[1] [h:1:0]   | x self cfg#0 |
[1] [h:2:0]   | y self cfg#0 |
[1] [h:1:0]   | remote memory write by ucp_put* from host memory to host |
[1] [h:2:0]   | remote memory read by ucp_get* into host memory from host |
[1] [h:1:0]   +----+----+----+
[1] [h:2:0]   +----+----+----+
[1] [h:1:0]   | 0..inf | zero-copy | cma/memory |
[1] [h:2:0]   | 0..1K | short | posix/memory |
[1] [h:2:0]   +----+----+----+
[1] [h:1:0]   +----+----+----+
+---+---+
| 0..x | zero-copy | tcp/lo |
+---+---+
| not | a | table | row |
";
    let info = parse(text);
    assert_eq!(info.selections.len(), 2);
    assert_eq!(info.selections[0].config, "y self cfg#0");
    assert_eq!(info.selections[0].range.max, Some(1024));
    assert_eq!(info.selections[1].lanes[0].transport, "cma");
    assert_eq!(info.skipped_tables, 1);
    assert_eq!(parse("").selections.len(), 0);
    assert_eq!(parse(&"|".repeat(10_000)).selections.len(), 0);
}
