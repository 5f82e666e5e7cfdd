//! The room's stored state and each socket's attachment, kept as JSON text. serde_json is in
//! the module anyway for the protocol; storing text instead of structured objects keeps
//! serde-wasm-bindgen out of it, and one string crosses into JavaScript instead of one call
//! per field.

use crate::registry::SocketInfo;
use crate::slots::RoomState;
use js_sys::futures::JsFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::worker_sys::ext::WebSocketExt;
use worker::{Error, Result, Storage, WebSocket};

const ROOM_KEY: &str = "room";

/// A stored value: JSON text, or a structured object written by a version before this one
/// (read through `JSON.stringify`, which keeps every field of those plain objects).
fn decode<T: DeserializeOwned>(value: JsValue) -> Result<Option<T>> {
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

fn encode<T: Serialize>(value: &T) -> Result<JsValue> {
    serde_json::to_string(value)
        .map(|text| JsValue::from_str(&text))
        .map_err(|e| Error::RustError(e.to_string()))
}

pub async fn load_room(storage: &Storage) -> Result<Option<RoomState>> {
    let value = JsFuture::from(storage.as_raw().get(ROOM_KEY)?).await?;
    decode(value)
}

/// Stores `room` and, with `alarm_at`, arms the alarm. Both calls are made before either is
/// awaited, so the runtime commits them as one atomic write and the welcome waits for one
/// round trip to storage, not two.
pub async fn save_room(storage: &Storage, room: &RoomState, alarm_at: Option<u64>) -> Result<()> {
    let raw = storage.as_raw();
    let put = JsFuture::from(raw.put(ROOM_KEY, encode(room)?)?);
    match alarm_at {
        Some(at) => {
            let alarm = JsFuture::from(raw.set_alarm(alarm_time(at), JsValue::NULL.into())?);
            let (put, alarm) = futures_util::future::join(put, alarm).await;
            put.and(alarm)?;
        }
        None => {
            put.await?;
        }
    }
    Ok(())
}

pub async fn set_alarm(storage: &Storage, at: u64) -> Result<()> {
    JsFuture::from(
        storage
            .as_raw()
            .set_alarm(alarm_time(at), JsValue::NULL.into())?,
    )
    .await?;
    Ok(())
}

/// An absolute alarm time (a plain number would be taken as an offset from now).
fn alarm_time(at_ms: u64) -> js_sys::Date {
    js_sys::Date::new(&JsValue::from_f64(at_ms as f64))
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
