//! Checkpoints signed by an AWS KMS key (`[audit.signing] kms_key_id`): an
//! asymmetric ECC_NIST_P256 key whose private half never leaves KMS, so not
//! even whoever holds the pods' files can sign a checkpoint without going
//! through KMS (and CloudTrail, which records every Sign). The writer thread
//! calls KMS synchronously on a runtime of its own; a Sign that fails skips
//! that checkpoint (logged), and the next one seals the head.

use aws_sdk_kms::{
    Client,
    primitives::Blob,
    types::{MessageType, SigningAlgorithmSpec},
};

use super::seal::{CheckpointSigner, P256_SPKI_PREFIX};

pub struct KmsSigner {
    rt: tokio::runtime::Runtime,
    client: Client,
    key: String,
    key_id: String,
}

impl std::fmt::Debug for KmsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KmsSigner({}, key_id {})", self.key, self.key_id)
    }
}

async fn client(region: Option<&str>, endpoint_url: Option<&str>, bounded: bool) -> Client {
    Client::new(&super::aws::sdk_config(region, endpoint_url, bounded).await)
}

/// The key's public half (SubjectPublicKeyInfo DER), refused unless it is
/// a P-256 key.
async fn public_key(client: &Client, key: &str) -> Result<Vec<u8>, String> {
    let out = client
        .get_public_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| {
            format!(
                "KMS GetPublicKey of {key}: {}",
                aws_sdk_kms::error::DisplayErrorContext(&e)
            )
        })?;
    let der = out
        .public_key()
        .map(|b| b.as_ref().to_vec())
        .ok_or_else(|| format!("KMS gave no public key for {key}"))?;
    if !der.starts_with(&P256_SPKI_PREFIX) || der.len() != P256_SPKI_PREFIX.len() + 65 {
        return Err(format!(
            "{key} is not an ECC_NIST_P256 key (SIGN_VERIFY), which checkpoints are signed with"
        ));
    }
    Ok(der)
}

impl KmsSigner {
    /// Connects and reads the key's public half (its `key_id` in every
    /// checkpoint); fails when KMS cannot be asked or the key is not P-256.
    pub fn connect(
        key: &str,
        region: Option<&str>,
        endpoint_url: Option<&str>,
    ) -> Result<Self, String> {
        let rt = super::aws::runtime().map_err(|e| e.to_string())?;
        let (client, der) = super::aws::block_on_aside(&rt, async {
            let client = client(region, endpoint_url, true).await;
            let der = public_key(&client, key).await?;
            Ok::<_, String>((client, der))
        })??;
        Ok(Self {
            rt,
            client,
            key: key.to_owned(),
            key_id: super::seal::spki_key_id(&der),
        })
    }
}

impl CheckpointSigner for KmsSigner {
    fn alg(&self) -> &'static str {
        super::seal::ALG_P256
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.rt.block_on(async {
            let out = self
                .client
                .sign()
                .key_id(&self.key)
                .message(Blob::new(message.to_vec()))
                .message_type(MessageType::Raw)
                .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                .send()
                .await
                .map_err(|e| {
                    format!("KMS Sign: {}", aws_sdk_kms::error::DisplayErrorContext(&e))
                })?;
            out.signature()
                .map(|b| b.as_ref().to_vec())
                .ok_or_else(|| "KMS Sign gave no signature".to_owned())
        })
    }
}

/// The public half of a KMS key, for `audit verify --kms-key-id` (the
/// usual credential chain and Region; `endpoint_url` for a compatible one).
pub fn fetch_public_key(key: &str, endpoint_url: Option<&str>) -> Result<Vec<u8>, String> {
    let rt = super::aws::runtime().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = client(None, endpoint_url, true).await;
        public_key(&client, key).await
    })
}
