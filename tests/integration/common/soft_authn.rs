//! A software authenticator for passkey enrolment tests: a P-256 key made
//! here, authenticator data and an attestation object built by the WebAuthn
//! spec's layout (Level 2 §6.1, §6.5, §8.2 packed, §8.7 none), and the
//! registration JSON a browser's PublicKeyCredential.toJSON() gives.

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ciborium::Value as Cbor;
use serde_json::{Value, json};

pub struct SoftKey {
    pair: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
}

/// What a test may bend in a registration.
pub struct Bend<'a> {
    pub fmt: &'a str,
    pub origin: &'a str,
    pub rp_id: &'a str,
    pub flags: u8,
    pub tamper_signature: bool,
}

impl Default for Bend<'_> {
    fn default() -> Self {
        Self {
            fmt: "packed",
            origin: "",
            rp_id: "",
            // UP | UV | AT
            flags: 0x45,
            tamper_signature: false,
        }
    }
}

impl SoftKey {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .expect("the key");
        let mut credential_id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut credential_id).expect("random");
        Self {
            pair,
            credential_id,
        }
    }

    fn cose_key(&self) -> Cbor {
        let point = self.pair.public_key().as_ref();
        let int = |i: i64| Cbor::Integer(i.into());
        Cbor::Map(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Cbor::Bytes(point[1..33].to_vec())),
            (int(-3), Cbor::Bytes(point[33..65].to_vec())),
        ])
    }

    /// The registration JSON for `options` (StartWebAuthnRegistration's
    /// answer), made as `bend` says (by default: packed self-attestation,
    /// the options' relying party, origin https://<rp>).
    pub fn register(&self, options: &Value, bend: &Bend<'_>) -> Value {
        let rp = if bend.rp_id.is_empty() {
            options["rp"]["id"].as_str().expect("rp.id").to_owned()
        } else {
            bend.rp_id.to_owned()
        };
        let origin = if bend.origin.is_empty() {
            format!("https://{}", options["rp"]["id"].as_str().expect("rp.id"))
        } else {
            bend.origin.to_owned()
        };
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": options["challenge"].as_str().expect("challenge"),
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes();
        let mut auth_data = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, rp.as_bytes())
            .as_ref()
            .to_vec();
        auth_data.push(bend.flags);
        auth_data.extend([0, 0, 0, 0]);
        auth_data.extend([0u8; 16]);
        auth_data.extend(
            u16::try_from(self.credential_id.len())
                .expect("len")
                .to_be_bytes(),
        );
        auth_data.extend(&self.credential_id);
        ciborium::into_writer(&self.cose_key(), &mut auth_data).expect("COSE key");
        let text = |s: &str| Cbor::Text(s.into());
        let statement = match bend.fmt {
            "packed" => {
                let mut signed = auth_data.clone();
                signed.extend(
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &client_data).as_ref(),
                );
                let mut sig = self
                    .pair
                    .sign(&SystemRandom::new(), &signed)
                    .expect("sign")
                    .as_ref()
                    .to_vec();
                if bend.tamper_signature {
                    let last = sig.len() - 1;
                    sig[last] ^= 1;
                }
                Cbor::Map(vec![
                    (text("alg"), Cbor::Integer((-7i64).into())),
                    (text("sig"), Cbor::Bytes(sig)),
                ])
            }
            _ => Cbor::Map(vec![]),
        };
        let object = Cbor::Map(vec![
            (text("fmt"), text(bend.fmt)),
            (text("attStmt"), statement),
            (text("authData"), Cbor::Bytes(auth_data)),
        ]);
        let mut attestation = Vec::new();
        ciborium::into_writer(&object, &mut attestation).expect("attestation object");
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "response": {
                "clientDataJSON": B64.encode(&client_data),
                "attestationObject": B64.encode(&attestation),
                "transports": ["usb", "nfc"],
            },
            "clientExtensionResults": {},
        })
    }
}
