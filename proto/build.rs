//! Compiles the .proto files with protox (pure Rust): no system `protoc` needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/servescope/agent/v1/agent.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .compile_fds(fds)?;
    Ok(())
}
