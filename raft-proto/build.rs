//! Generates the Rust wire types from `proto/eraftpb.proto` with protox (a pure-Rust protobuf compiler),
//! so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/eraftpb.proto");
    let descriptors = protox::compile(["proto/eraftpb.proto"], ["proto"])?;
    let mut config = prost_build::Config::new();
    config.bytes(["."]);
    // A snapshot rides in few messages but would make every `Message` 150 bytes larger (and
    // slower to move) if held inline.
    config.boxed(".eraftpb.Message.snapshot");
    config.compile_fds(descriptors)?;
    Ok(())
}
