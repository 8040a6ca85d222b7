//! The local backend's page tokens: opaque to the caller (unpadded
//! base64url) as Cognito's are, and refused unless this backend made them.

/// A page token of the local backend: `text`, opaque to the caller
/// (unpadded base64url) as Cognito's are.
pub(super) fn encode_page_token(text: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(text)
}

/// The text of a page token this backend handed out; `None` for any other.
pub(super) fn decode_page_token(token: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

pub(super) fn encode_offset(offset: usize) -> String {
    encode_page_token(&format!("offset:{offset}"))
}

pub(super) fn decode_offset(token: &str) -> Option<usize> {
    decode_page_token(token)?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}
