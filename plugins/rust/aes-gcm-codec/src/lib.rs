//! An AES-256-GCM payload codec, byte for byte the one of the Temporal
//! Python SDK's encryption sample (`encryption/codec.py` in
//! temporalio/samples-python): each payload is serialized as a
//! `temporal.api.common.v1.Payload` protobuf, encrypted with a random
//! 12-byte nonce (`nonce || ciphertext || tag`), and wrapped in a payload
//! with metadata `encoding: binary/encrypted` and `encryption-key-id`.
//!
//! Configuration, from the environment the host gives it (the `[codec]`
//! table's `env` and `secrets`):
//!
//! * `CODEC_KEY_ID` (required): the key id written into encoded payloads;
//!   decoding a payload of another key id fails, naming both.
//! * the key, in the variable `CODEC_KEY_VAR` names (default
//!   `CAISSON_CODEC_KEY`): 32 bytes of text used as they are (as the
//!   sample's `test-key-test-key-test-key-test!`), or 64 hex digits, or
//!   `base64:` and the base64 of 32 bytes.

wit_bindgen::generate!({
    world: "caisson:codec/codec",
    path: "../../../wit/codec",
});

mod proto;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use caisson::codec::types::Payload;
use exports::caisson::codec::payload_codec::Guest;

const ENCODING: &str = "encoding";
const ENCRYPTED: &[u8] = b"binary/encrypted";
const KEY_ID: &str = "encryption-key-id";
const NONCE_LEN: usize = 12;

struct Codec;

/// The key and its id, read from the environment on every call (each
/// call runs in a fresh instance).
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn from_env() -> Result<Key, String> {
        let id = std::env::var("CODEC_KEY_ID").map_err(|_| "CODEC_KEY_ID is not set: give the key id in the codec's env".to_owned())?;
        if id.is_empty() {
            return Err("CODEC_KEY_ID is empty".into());
        }
        let var = std::env::var("CODEC_KEY_VAR").unwrap_or_else(|_| "CAISSON_CODEC_KEY".into());
        let text = std::env::var(&var)
            .map_err(|_| format!("the key variable {var} is not set: list it in the codec's secrets (and set it in the worker's environment)"))?;
        let key = parse_key(&text).map_err(|e| format!("{var}: {e}"))?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| format!("{var}: not a 32-byte key"))?;
        Ok(Key { id, cipher })
    }
}

/// 32 bytes of text as they are, 64 hex digits, or `base64:` + base64.
fn parse_key(text: &str) -> Result<Vec<u8>, String> {
    let key = if let Some(b64) = text.strip_prefix("base64:") {
        base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| format!("invalid base64: {e}"))?
    } else if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or_default()).collect()
    } else {
        text.as_bytes().to_vec()
    };
    if key.len() != 32 {
        return Err(format!(
            "an AES-256 key is 32 bytes, this one is {} (give 32 bytes of text, 64 hex digits, or base64:BASE64)",
            key.len()
        ));
    }
    Ok(key)
}

fn meta<'a>(p: &'a Payload, key: &str) -> Option<&'a [u8]> {
    p.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
}

impl Guest for Codec {
    fn encode(payloads: Vec<Payload>) -> Result<Vec<Payload>, String> {
        let key = Key::from_env()?;
        payloads
            .into_iter()
            .map(|p| {
                let nonce = wasip2::random::random::get_random_bytes(NONCE_LEN as u64);
                let sealed = key
                    .cipher
                    .encrypt(Nonce::from_slice(&nonce), proto::encode(&p).as_slice())
                    .map_err(|_| "AES-GCM encryption failed".to_owned())?;
                let mut data = nonce;
                data.extend_from_slice(&sealed);
                Ok(Payload {
                    metadata: vec![(ENCODING.into(), ENCRYPTED.to_vec()), (KEY_ID.into(), key.id.as_bytes().to_vec())],
                    data,
                })
            })
            .collect()
    }

    fn decode(payloads: Vec<Payload>) -> Result<Vec<Payload>, String> {
        let key = Key::from_env()?;
        #[cfg(feature = "faulty")]
        let payloads = fault(payloads);
        payloads
            .into_iter()
            .map(|p| {
                if meta(&p, ENCODING) != Some(ENCRYPTED) {
                    return Ok(p);
                }
                let id = String::from_utf8_lossy(meta(&p, KEY_ID).unwrap_or_default());
                if id != key.id {
                    return Err(format!("Unrecognized key ID {id}. Current key ID is {}.", key.id));
                }
                if p.data.len() < NONCE_LEN {
                    return Err(format!("encrypted payload of key ID {id} is too short ({} bytes)", p.data.len()));
                }
                let (nonce, sealed) = p.data.split_at(NONCE_LEN);
                let plain = key
                    .cipher
                    .decrypt(Nonce::from_slice(nonce), sealed)
                    .map_err(|_| format!("cannot decrypt a payload of key ID {id}: wrong key, or the payload was altered"))?;
                proto::decode(&plain).map_err(|e| format!("decrypted payload of key ID {id} is not a Payload: {e}"))
            })
            .collect()
    }
}

/// The misbehaviour `CODEC_FAULT` asks for (test builds only).
#[cfg(feature = "faulty")]
fn fault(mut payloads: Vec<Payload>) -> Vec<Payload> {
    match std::env::var("CODEC_FAULT").as_deref() {
        Ok("trap") if !payloads.is_empty() => panic!("CODEC_FAULT=trap"),
        Ok("count") => {
            payloads.pop();
            payloads
        }
        _ => payloads,
    }
}

export!(Codec);
