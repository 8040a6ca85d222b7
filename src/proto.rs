//! The generated protobuf and tonic code, and the descriptor set for reflection.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("cognito.mfa.v1");
}

/// The local backend's test fixtures, served only in local mode.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod dev {
    pub mod v1 {
        tonic::include_proto!("cognito.mfa.dev.v1");
    }
}

/// The encoded FileDescriptorSet of the API, cognito.mfa.v1 (with imports
/// and comments).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mfa_descriptor");

/// The encoded FileDescriptorSet of the local fixtures, cognito.mfa.dev.v1.
pub const DEV_FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("dev_descriptor");
