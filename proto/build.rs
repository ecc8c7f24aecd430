//! Compiles the .proto files with protox (pure Rust): no system `protoc` needed.
//! The OpenTelemetry protocol files (proto/opentelemetry/…, vendored from
//! opentelemetry-proto v1.9.0, Apache-2.0) are compiled alongside ours for the
//! coordinator's OTLP/gRPC trace receiver.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/servescope/agent/v1/agent.proto",
        "proto/servescope/agent/v1/common.proto",
        "proto/servescope/agent/v1/telemetry.proto",
        "proto/servescope/agent/v1/probe.proto",
        "proto/servescope/agent/v1/shard.proto",
        "proto/opentelemetry/proto/collector/trace/v1/trace_service.proto",
        "proto/opentelemetry/proto/trace/v1/trace.proto",
        "proto/opentelemetry/proto/common/v1/common.proto",
        "proto/opentelemetry/proto/resource/v1/resource.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .type_attribute(".servescope", "#[derive(serde::Serialize)]")
        .compile_fds(fds)?;
    Ok(())
}
