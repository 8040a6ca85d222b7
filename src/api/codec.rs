//! The gRPC codec of the facade's own services: prost's, with a look at the
//! wire before decoding where decoding itself would cost much more than the
//! bytes received.
//!
//! prost keeps every element of a repeated field, and a one-byte string
//! costs ~50 bytes decoded (its `String` plus the allocation): 1 MiB of
//! `update_mask` paths was ~20 MiB of heap before validation could refuse
//! it. The requests with a repeated field, `UpdateUserPoolMfaConfigRequest`
//! (`update_mask.paths`) and the fixtures' `CreateUserRequest`
//! (`attributes`), have their elements counted on the wire first; past the
//! limit the call is INVALID_ARGUMENT before anything is allocated. Every
//! other field either replaces its value when repeated (scalars, strings)
//! or merges into one (messages), and unknown fields are skipped, so the
//! decode limit alone bounds them.

use std::{any::TypeId, marker::PhantomData};

use bytes::Buf;
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::domain::mask;
use crate::proto::{dev::v1 as dev, v1 as pb};

/// The most `update_mask` paths one UpdateUserPoolMfaConfig may name: every
/// known path, with room for repeats (which are refused by name anyway).
pub const MAX_MASK_PATHS: usize = 4 * mask::PATHS.len();
/// The most attributes a fixtures CreateUser may set (Cognito allows 50
/// custom attributes beside its ~20 standard ones).
pub const MAX_FIXTURE_ATTRIBUTES: usize = 100;

/// prost's codec, with the wire-level counts above.
pub struct BoundedCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for BoundedCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for BoundedCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BoundedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder(ProstDecoder::default())
    }
}

pub struct BoundedDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default + 'static> Decoder for BoundedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        check_repeated::<U>(buf.chunk())?;
        self.0.decode(buf)
    }

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        self.0.buffer_settings()
    }
}

/// Refuses a request whose repeated field holds more elements than it may
/// (the decoder's check; public for the fuzz targets).
pub fn check_repeated<U: 'static>(wire: &[u8]) -> Result<(), Status> {
    let id = TypeId::of::<U>();
    let (field, count, max, rule) = if id == TypeId::of::<pb::UpdateUserPoolMfaConfigRequest>() {
        // update_mask = 3, and in FieldMask, paths = 1.
        let n = nested_count(wire, 3, 1);
        (
            "update_mask",
            n,
            MAX_MASK_PATHS,
            format!("UpdateUserPoolMfaConfig knows {} paths", mask::PATHS.len()),
        )
    } else if id == TypeId::of::<dev::CreateUserRequest>() {
        // attributes = 3 (a map: one entry per occurrence).
        let n = count_fields(wire, 3).unwrap_or(0);
        (
            "attributes",
            n,
            MAX_FIXTURE_ATTRIBUTES,
            "a user has at most ~70 attributes".to_owned(),
        )
    } else {
        return Ok(());
    };
    if count <= max {
        return Ok(());
    }
    let mut v = crate::domain::rules::Violations::default();
    v.add(
        field,
        format!("holds {count} entries; at most {max} are accepted ({rule})"),
    );
    Err(crate::error::Error::from(v).into())
}

/// Reads one varint; `None` when the bytes end or it runs past 10 bytes.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

/// Visits each top-level field as (number, the bytes of a length-delimited
/// value or `None`); `None` overall when the wire is malformed (prost will
/// refuse it then, so nothing is counted).
fn fields(mut wire: &[u8], mut visit: impl FnMut(u64, Option<&[u8]>)) -> Option<()> {
    while !wire.is_empty() {
        let key = varint(&mut wire)?;
        let number = key >> 3;
        match key & 7 {
            0 => {
                varint(&mut wire)?;
                visit(number, None);
            }
            1 => {
                wire = wire.get(8..)?;
                visit(number, None);
            }
            2 => {
                let len = usize::try_from(varint(&mut wire)?).ok()?;
                let value = wire.get(..len)?;
                wire = &wire[len..];
                visit(number, Some(value));
            }
            5 => {
                wire = wire.get(4..)?;
                visit(number, None);
            }
            _ => return None,
        }
    }
    Some(())
}

/// How often field `number` occurs at the top level.
fn count_fields(wire: &[u8], number: u64) -> Option<usize> {
    let mut n = 0usize;
    fields(wire, |f, _| n += usize::from(f == number))?;
    Some(n)
}

/// How often field `inner` occurs inside every occurrence of message field
/// `outer` (prost merges repeated occurrences of a message field, so their
/// elements add up).
fn nested_count(wire: &[u8], outer: u64, inner: u64) -> usize {
    let mut n = 0usize;
    let _ = fields(wire, |f, value| {
        if f == outer
            && let Some(value) = value
        {
            n += count_fields(value, inner).unwrap_or(0);
        }
    });
    n
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn update_with(paths: usize, split: usize) -> Vec<u8> {
        // `split` occurrences of update_mask, which prost merges.
        let mut wire = pb::UpdateUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_a".into(),
            ..Default::default()
        }
        .encode_to_vec();
        for _ in 0..split {
            let part = pb::UpdateUserPoolMfaConfigRequest {
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["x".into(); paths / split],
                }),
                ..Default::default()
            };
            wire.extend(part.encode_to_vec());
        }
        wire
    }

    #[test]
    fn mask_paths_are_counted_across_merged_occurrences() {
        assert_eq!(nested_count(&update_with(10, 1), 3, 1), 10);
        assert_eq!(nested_count(&update_with(400, 4), 3, 1), 400);
        let decoded = pb::UpdateUserPoolMfaConfigRequest::decode(&update_with(400, 4)[..])
            .unwrap_or_default();
        assert_eq!(
            decoded.update_mask.map(|m| m.paths.len()),
            Some(400),
            "prost merges them: the count must add them up"
        );
        assert!(check_repeated::<pb::UpdateUserPoolMfaConfigRequest>(&update_with(68, 2)).is_ok());
        let refused =
            check_repeated::<pb::UpdateUserPoolMfaConfigRequest>(&update_with(400, 4)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().contains("update_mask"),
            "{}",
            refused.message()
        );
    }

    #[test]
    fn malformed_wire_counts_nothing_and_other_types_are_not_scanned() {
        for bad in [&[0xffu8; 11][..], &[0x1a, 0x7f][..], &[0x0f][..]] {
            assert_eq!(nested_count(bad, 3, 1), 0);
        }
        assert!(check_repeated::<pb::GetUserPoolMfaConfigRequest>(&update_with(4000, 1)).is_ok());
    }

    #[test]
    fn fixture_attributes_are_counted() {
        let req = dev::CreateUserRequest {
            attributes: (0..150).map(|i| (format!("k{i}"), "v".into())).collect(),
            ..Default::default()
        };
        assert!(check_repeated::<dev::CreateUserRequest>(&req.encode_to_vec()).is_err());
    }
}
