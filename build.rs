//! Compiles the mfa-facade protos with protox (pure Rust, so no `protoc` is
//! needed on the machine), generates the tonic code, and writes the encoded
//! FileDescriptorSet that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/cognito/mfa/v1/types.proto",
    "proto/cognito/mfa/v1/user_pool_mfa_service.proto",
    "proto/cognito/mfa/v1/user_mfa_service.proto",
    "proto/cognito/mfa/dev/v1/fixtures.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;
    let fds = compiler.file_descriptor_set();

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("mfa_descriptor.bin"), fds.encode_to_vec())?;

    // Well-known types (FieldMask) map to prost-types, so only our package
    // is generated.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
