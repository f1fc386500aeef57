//! JWT-shaped access tokens: `header.payload.signature`, base64url without padding, signed
//! with HMAC-SHA256 under a per-sandbox key. Clients only need to decode the payload (for
//! `exp`); the sandbox itself validates tokens by lookup, not by signature.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The claims of a sandbox access token (Okta-style names, reference §1.4).
#[derive(Debug, Serialize)]
pub(crate) struct Claims<'a> {
    pub(crate) ver: u8,
    pub(crate) jti: String,
    pub(crate) iss: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) cid: &'a str,
    pub(crate) uid: &'a str,
    pub(crate) scp: Vec<&'static str>,
    pub(crate) auth_time: i64,
    pub(crate) sub: &'a str,
    pub(crate) platform_user_id: &'a str,
    /// The Constant Contact account the token acts for (`encoded_account_id`).
    pub(crate) encoded_account_id: &'a str,
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block_key.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block_key.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// Encodes and signs `claims`.
pub(crate) fn sign(key: &[u8], claims: &Claims<'_>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"kid":"sandbox","alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// Lowercase hex SHA-256 of a token: how tokens are keyed in memory and in the state file.
pub(crate) fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_test_vector() {
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn a_token_has_three_base64url_parts_and_a_readable_payload() {
        let claims = Claims {
            ver: 1,
            jti: "AT.x".into(),
            iss: "http://127.0.0.1/oauth2/default",
            aud: "https://api.cc.email/v3",
            iat: 10,
            exp: 20,
            cid: "client",
            uid: "uid",
            scp: vec!["contact_data"],
            auth_time: 10,
            sub: "owner@example",
            platform_user_id: "p",
            encoded_account_id: "a",
        };
        let token = sign(b"key", &claims);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url"))
                .expect("json");
        assert_eq!(payload["exp"], 20);
        assert_eq!(payload["scp"][0], "contact_data");
        assert_eq!(token_hash("abc").len(), 64);
    }
}
