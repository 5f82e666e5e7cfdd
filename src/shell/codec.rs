//! The room's stored state and each socket's attachment, kept as JSON text. serde_json is in
//! the module anyway for the protocol; storing text instead of structured objects keeps
//! serde-wasm-bindgen out of it, and one string crosses into JavaScript instead of one call
//! per field.

use crate::registry::SocketInfo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::worker_sys::ext::WebSocketExt;
use worker::{Error, Result, WebSocket};

/// A stored value: JSON text, or a structured object written by a version before this one
/// (read through `JSON.stringify`, which keeps every field of those plain objects).
pub fn decode<T: DeserializeOwned>(value: JsValue) -> Result<Option<T>> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let text = match value.as_string() {
        Some(text) => text,
        None => js_sys::JSON::stringify(&value)?
            .as_string()
            .ok_or_else(|| Error::RustError("stored value is not JSON".into()))?,
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::RustError(format!("stored value does not decode: {e}")))
}

pub fn encode<T: Serialize>(value: &T) -> Result<JsValue> {
    serde_json::to_string(value)
        .map(|text| JsValue::from_str(&text))
        .map_err(|e| Error::RustError(e.to_string()))
}

pub fn attach(ws: &WebSocket, info: &SocketInfo) -> Result<()> {
    let raw: &web_sys::WebSocket = ws.as_ref();
    raw.serialize_attachment(encode(info)?)?;
    Ok(())
}

/// The socket's attachment; `None` for a socket that never got one (a refused arrival).
pub fn attachment(ws: &WebSocket) -> Result<Option<SocketInfo>> {
    let raw: &web_sys::WebSocket = ws.as_ref();
    decode(raw.deserialize_attachment()?)
}
