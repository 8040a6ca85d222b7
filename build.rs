//! Compiles the mfa-facade protos with protox (pure Rust, so no `protoc` is
//! needed on the machine), generates the tonic code, and writes the encoded
//! FileDescriptorSets that server reflection serves: one for the API, one for
//! the local backend's fixtures (registered only when they are served).

use std::{env, fs, path::PathBuf};

use prost::Message;

const API_PROTOS: &[&str] = &[
    "proto/cognito/mfa/v1/types.proto",
    "proto/cognito/mfa/v1/user_pool_mfa_service.proto",
    "proto/cognito/mfa/v1/user_mfa_service.proto",
];
const DEV_PROTOS: &[&str] = &["proto/cognito/mfa/dev/v1/fixtures.proto"];

fn compile(files: &[&str]) -> Result<prost_types::FileDescriptorSet, Box<dyn std::error::Error>> {
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(files)?;
    Ok(compiler.file_descriptor_set())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // Relative relocations packed (DT_RELR, glibc 2.36+, GNU ld 2.38+): the
    // loader reads ~30 KB at start instead of the 2.2 MB `.rela.dyn` of a
    // position-independent binary this size, and those pages stay out of
    // the process's memory. The binary stays PIE (ASLR). On a glibc older
    // than 2.36 it refuses to start with the loader's "GLIBC_ABI_DT_RELR not
    // found" (deploy/Dockerfile's runtime is Debian 12, glibc 2.36).
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let api = compile(API_PROTOS)?;
    fs::write(out_dir.join("mfa_descriptor.bin"), api.encode_to_vec())?;
    let dev = compile(DEV_PROTOS)?;
    fs::write(out_dir.join("dev_descriptor.bin"), dev.encode_to_vec())?;

    // Well-known types (FieldMask) map to prost-types, so only our packages
    // are generated.
    let all = compile(&[API_PROTOS, DEV_PROTOS].concat())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // prost's codec with a wire-level count of repeated fields first
        // (src/api/codec.rs): decoding must not cost much more than it received.
        .codec_path("crate::api::codec::BoundedCodec")
        .compile_fds(all)?;
    Ok(())
}
