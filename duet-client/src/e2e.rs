//! The end-to-end envelope of `docs/e2e.md`, byte for byte what `public/js/e2e.js` and
//! `public/js/duet.js` do: the key, the envelope, its receiving rules (reflection and replay
//! included), the key-confirmation hello, and the safety code ([`sas`]).
//!
//! [`E2e`] is one side's state for "this connection" of the document: the key, every client id
//! it has held and every IV it has accepted. Both sets only grow; a fresh welcome adds an id and
//! clears nothing. It does no I/O and keeps no clock: whoever drives the socket seals what it
//! sends, opens what it receives, and runs the [`KEY_CONFIRM`] timer after `ready`.
//!
//! ```
//! use duet_client::e2e::{E2e, Received};
//!
//! let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
//! let mut alice = E2e::new(secret, "room-1").unwrap();
//! let mut bob = E2e::new(secret, "room-1").unwrap();
//! alice.add_own_id("alice-id");
//! bob.add_own_id("bob-id");
//!
//! let envelope = alice.seal("alice-id", &serde_json::json!({"kind": "chat"})).unwrap();
//! let data = serde_json::to_value(&envelope).unwrap();
//! assert_eq!(bob.receive("alice-id", &data), Ok(Received::Message(serde_json::json!({"kind": "chat"}))));
//! // The same envelope again is a replay.
//! assert!(bob.receive("alice-id", &data).is_err());
//! ```

pub mod codec;
pub mod sas;

pub use codec::{EnvelopeCodec, PlainCodec};

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

/// The envelope's version, its `e2e` field.
pub const E2E_VERSION: u8 = 1;
/// Salt of the key derivation and prefix of a message's additional data.
const LABEL: &str = "duet-e2e-v1";
/// Prefix of a hello's additional data; no message's starts with it.
const HELLO_LABEL: &str = "duet-e2e-v1-hello";
const SECRET_BYTES: usize = 32;
const IV_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// How long after `ready` the other side's hello may take before silence means `key-mismatch`
/// (docs/e2e.md, "Key confirmation", 4; `KEY_CONFIRM_MS` of duet.js).
pub const KEY_CONFIRM: Duration = Duration::from_millis(5000);

/// Why a secret from a `#k=` link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSecret;

impl fmt::Display for BadSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an e2e key is 43 characters of canonical base64url (32 bytes)")
    }
}

impl std::error::Error for BadSecret {}

/// Why a received message was not delivered: the reasons of docs/e2e.md, "Receiving", with the
/// names duet.js reports in its `e2e-error` event ([`E2eError::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum E2eError {
    /// We have a key and the message is not an envelope.
    NotEncrypted,
    /// We have no key and the message is an envelope (see [`check_plain`]).
    UnexpectedEnvelope,
    /// A wrong version, IV or ciphertext shape, a plaintext that is not JSON, or a hello whose
    /// plaintext is not `{"to": string}`.
    Malformed,
    /// Another key, an altered IV or ciphertext, or another sender.
    Undecryptable,
    /// An IV this connection has accepted before.
    Replayed,
    /// `from` is an id this connection has held itself.
    Reflected,
    /// A hello that does not open with our key: the other link has another key, or none.
    KeyMismatch,
}

impl E2eError {
    /// The reason's name in docs/e2e.md and duet.js, e.g. `"replayed"`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotEncrypted => "not-encrypted",
            Self::UnexpectedEnvelope => "unexpected-envelope",
            Self::Malformed => "malformed",
            Self::Undecryptable => "undecryptable",
            Self::Replayed => "replayed",
            Self::Reflected => "reflected",
            Self::KeyMismatch => "key-mismatch",
        }
    }
}

impl fmt::Display for E2eError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotEncrypted => {
                "the message is not encrypted, but this connection expects envelopes"
            }
            Self::UnexpectedEnvelope => "the message is encrypted, but this connection has no key",
            Self::Malformed => "the envelope is malformed",
            Self::Undecryptable => "the envelope does not decrypt with this key for this sender",
            Self::Replayed => "the envelope was already received once (a replay)",
            Self::Reflected => "the envelope claims to come from this connection itself",
            Self::KeyMismatch => {
                "the other side's link has a different key, or none: its key confirmation did not open with this key, or did not come"
            }
        })
    }
}

impl std::error::Error for E2eError {}

/// A sealed message or hello: the `data` of a `message` frame. Serializes in the field order of
/// the document's vectors: `{"e2e":1,"iv":…,"ct":…}`, `{"e2e":1,"hello":1,"iv":…,"ct":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    pub e2e: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hello: Option<u8>,
    pub iv: String,
    pub ct: String,
}

/// What an accepted envelope was.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A message: the application's JSON value.
    Message(Value),
    /// A hello naming `to`. `confirmed` when `to` is our current id: the other side holds our
    /// key. One naming another id is an earlier pairing's and says nothing about this one.
    Hello { to: String, confirmed: bool },
}

/// One side's end-to-end state for one room ("this connection" of docs/e2e.md).
pub struct E2e {
    cipher: Aes256Gcm,
    room: String,
    /// Every client id this side has been welcomed as (and a stored slot's, if any).
    own_ids: HashSet<String>,
    current_id: Option<String>,
    accepted_ivs: HashSet<[u8; IV_BYTES]>,
}

impl fmt::Debug for E2e {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("E2e")
            .field("room", &self.room)
            .field("own_ids", &self.own_ids)
            .finish_non_exhaustive()
    }
}

/// The 32 secret bytes of a link's `#k=` value; only the canonical 43-character spelling.
pub fn parse_secret(secret: &str) -> Result<[u8; SECRET_BYTES], BadSecret> {
    if secret.len() != 43 {
        return Err(BadSecret);
    }
    decode_canonical(secret)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(BadSecret)
}

/// A fresh secret for a new call link: 32 random bytes in base64url without padding.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The room's AES-256-GCM key: HKDF-SHA256 of the secret, salt `duet-e2e-v1`, info the room.
pub fn derive_key(secret: &str, room: &str) -> Result<[u8; 32], BadSecret> {
    let ikm = parse_secret(secret)?;
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(LABEL.as_bytes()), &ikm)
        .expand(room.as_bytes(), &mut key)
        .map_err(|_| BadSecret)?; // 32 bytes is always a valid length for SHA-256
    Ok(key)
}

/// Whether `data` is meant as an envelope: an object with an `e2e` field.
pub fn is_envelope(data: &Value) -> bool {
    data.as_object().is_some_and(|o| o.contains_key("e2e"))
}

/// Whether `data` is meant as a key confirmation: an envelope with a `hello` field.
pub fn is_hello(data: &Value) -> bool {
    data.as_object()
        .is_some_and(|o| o.contains_key("e2e") && o.contains_key("hello"))
}

/// For a side without a key: a message that is an envelope (hellos included) is dropped as
/// `unexpected-envelope`, never delivered.
pub fn check_plain(data: &Value) -> Result<(), E2eError> {
    if is_envelope(data) {
        Err(E2eError::UnexpectedEnvelope)
    } else {
        Ok(())
    }
}

/// The length in bytes of the `{"type":"message","data":{envelope}}` frame that carries a value
/// whose JSON text is `plaintext_bytes` long (as duet.js's `envelopeFrameBytes`).
pub fn envelope_frame_bytes(plaintext_bytes: usize) -> usize {
    let b64 = |n: usize| (n * 4).div_ceil(3);
    r#"{"type":"message","data":{"e2e":1,"iv":"","ct":""}}"#.len()
        + b64(IV_BYTES)
        + b64(plaintext_bytes + TAG_BYTES)
}

impl E2e {
    /// The state for `room` with the secret of a `#k=` link.
    pub fn new(secret: &str, room: &str) -> Result<Self, BadSecret> {
        let key = derive_key(secret, room)?;
        Ok(Self {
            cipher: Aes256Gcm::new(&key.into()),
            room: room.to_owned(),
            own_ids: HashSet::new(),
            current_id: None,
            accepted_ivs: HashSet::new(),
        })
    }

    /// A welcome named us `client_id`: it is our current id, and one of ours for good (rule 5).
    pub fn add_own_id(&mut self, client_id: &str) {
        self.own_ids.insert(client_id.to_owned());
        self.current_id = Some(client_id.to_owned());
    }

    /// An id that was ours before this object existed (a stored slot's): refused as a sender,
    /// without becoming the current id.
    pub fn add_former_id(&mut self, client_id: &str) {
        self.own_ids.insert(client_id.to_owned());
    }

    /// Seals `value`'s JSON text as sent by `sender` (our current client id), with a random IV.
    pub fn seal(&self, sender: &str, value: &impl Serialize) -> Result<Envelope, SealError> {
        let text = serde_json::to_string(value).map_err(|_| SealError::NotJson)?;
        self.seal_json(sender, &text)
    }

    /// Seals a JSON text (the application's value, already written) with a random IV.
    pub fn seal_json(&self, sender: &str, json: &str) -> Result<Envelope, SealError> {
        self.seal_text(sender, json, random_iv()?)
    }

    /// Seals a JSON text with the given IV (test vectors; everything else uses [`E2e::seal`]).
    pub fn seal_text(
        &self,
        sender: &str,
        json: &str,
        iv: [u8; IV_BYTES],
    ) -> Result<Envelope, SealError> {
        let aad = additional_data(LABEL, &self.room, sender);
        self.encrypt(&aad, json.as_bytes(), iv, None)
    }

    /// The hello `sender` sends `receiver` after `ready`: `{"to":"{receiver}"}` sealed with the
    /// hello's additional data, with a random IV.
    pub fn seal_hello(&self, sender: &str, receiver: &str) -> Result<Envelope, SealError> {
        self.seal_hello_with_iv(sender, receiver, random_iv()?)
    }

    /// [`E2e::seal_hello`] with the given IV (test vectors).
    pub fn seal_hello_with_iv(
        &self,
        sender: &str,
        receiver: &str,
        iv: [u8; IV_BYTES],
    ) -> Result<Envelope, SealError> {
        let plaintext = serde_json::to_string(&serde_json::json!({ "to": receiver }))
            .map_err(|_| SealError::NotJson)?;
        let aad = additional_data(HELLO_LABEL, &self.room, sender);
        self.encrypt(&aad, plaintext.as_bytes(), iv, Some(1))
    }

    fn encrypt(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        iv: [u8; IV_BYTES],
        hello: Option<u8>,
    ) -> Result<Envelope, SealError> {
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::TooLong)?;
        Ok(Envelope {
            e2e: E2E_VERSION,
            hello,
            iv: URL_SAFE_NO_PAD.encode(iv),
            ct: URL_SAFE_NO_PAD.encode(ct),
        })
    }

    /// Checks a relayed message's `data` from `from` by every rule of docs/e2e.md, in duet.js's
    /// order, and remembers its IV once accepted. Nothing that fails is delivered.
    pub fn receive(&mut self, from: &str, data: &Value) -> Result<Received, E2eError> {
        let (iv, received) = if is_hello(data) {
            let (iv, to) = self.open_hello(from, data)?;
            let confirmed = self.current_id.as_deref() == Some(to.as_str());
            (iv, Received::Hello { to, confirmed })
        } else {
            let (iv, value) = self.open(from, data)?;
            (iv, Received::Message(value))
        };
        if self.own_ids.contains(from) {
            return Err(E2eError::Reflected);
        }
        if !self.accepted_ivs.insert(iv) {
            return Err(E2eError::Replayed);
        }
        Ok(received)
    }

    /// Decrypts a message envelope (rules 1 to 4); reflection and replay are [`E2e::receive`]'s.
    fn open(&self, from: &str, data: &Value) -> Result<([u8; IV_BYTES], Value), E2eError> {
        if !is_envelope(data) {
            return Err(E2eError::NotEncrypted);
        }
        let aad = additional_data(LABEL, &self.room, from);
        self.decrypt(&aad, data, E2eError::Undecryptable)
    }

    fn open_hello(&self, from: &str, data: &Value) -> Result<([u8; IV_BYTES], String), E2eError> {
        if !is_one(data.get("hello")) {
            return Err(E2eError::Malformed);
        }
        let aad = additional_data(HELLO_LABEL, &self.room, from);
        let (iv, value) = self.decrypt(&aad, data, E2eError::KeyMismatch)?;
        match value.get("to") {
            Some(Value::String(to)) if value.is_object() => Ok((iv, to.clone())),
            _ => Err(E2eError::Malformed),
        }
    }

    fn decrypt(
        &self,
        aad: &[u8],
        data: &Value,
        failure: E2eError,
    ) -> Result<([u8; IV_BYTES], Value), E2eError> {
        let field = |name: &str| {
            data.get(name)
                .and_then(Value::as_str)
                .and_then(decode_canonical)
        };
        let iv: Option<[u8; IV_BYTES]> = field("iv").and_then(|bytes| bytes.try_into().ok());
        let ct = field("ct");
        let (Some(iv), Some(ct)) = (iv, ct) else {
            return Err(E2eError::Malformed);
        };
        if !is_one(data.get("e2e")) || ct.len() < TAG_BYTES {
            return Err(E2eError::Malformed);
        }
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(&iv), Payload { msg: &ct, aad })
            .map_err(|_| failure)?;
        let value = serde_json::from_slice(&plaintext).map_err(|_| E2eError::Malformed)?;
        Ok((iv, value))
    }
}

/// Why a value could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// The value has no JSON text (a map with non-string keys, say).
    NotJson,
    /// Beyond AES-GCM's 64 GiB per message.
    TooLong,
    /// The system's random source failed.
    NoRandom,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotJson => "the value cannot be written as JSON",
            Self::TooLong => "the message is too long to encrypt",
            Self::NoRandom => "no random bytes for the IV",
        })
    }
}

impl std::error::Error for SealError {}

fn random_iv() -> Result<[u8; IV_BYTES], SealError> {
    let mut iv = [0u8; IV_BYTES];
    getrandom::getrandom(&mut iv).map_err(|_| SealError::NoRandom)?;
    Ok(iv)
}

/// Whether a field is the number 1, as JavaScript's `=== 1` sees it (`1.0` included).
fn is_one(field: Option<&Value>) -> bool {
    field.and_then(Value::as_f64) == Some(1.0)
}

fn additional_data(label: &str, room: &str, sender: &str) -> Vec<u8> {
    format!("{label}/{room}/{sender}").into_bytes()
}

/// The bytes of canonical base64url without padding (the only spelling accepted anywhere in an
/// envelope or a link), else `None`. The base64 crate's decoder already refuses padding, a
/// length of 1 mod 4 and non-zero unused bits.
fn decode_canonical(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests;
