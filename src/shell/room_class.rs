//! The `Room` class that the runtime instantiates for each room, bound by hand rather than
//! through workers-rs' `#[durable_object]`, which makes every handler async. Per relayed
//! frame, that glue's future, promise and microtask cost more than the relay itself
//! (bench/BASELINE.md, "Close to the floor"). Here the socket handlers run to completion
//! synchronously and return only the storage writes still unconfirmed (see `storage`), or
//! nothing; `fetch` and `alarm`, which may wait for the network, stay async, and so does an
//! `ice-servers` frame when Cloudflare's TURN servers must be fetched for it.

use super::room_object::Room;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::Env;

#[wasm_bindgen(js_name = Room)]
pub struct RoomClass {
    /// Shared with the one handler that may finish after it returns (`ice-servers`).
    room: Rc<Room>,
}

/// A handler's outcome for the runtime: its unconfirmed writes, or its error thrown (the
/// writes of a failed event are not left for the next one to return).
fn settled(room: &Room, result: worker::Result<()>) -> Result<JsValue, JsValue> {
    let pending = room.unconfirmed();
    result.map(|()| pending).map_err(JsValue::from)
}

#[wasm_bindgen(js_class = Room, wasm_bindgen_futures = ::worker::wasm_bindgen_futures)]
impl RoomClass {
    #[wasm_bindgen(constructor)]
    pub fn new(state: worker::worker_sys::DurableObjectState, env: Env) -> RoomClass {
        RoomClass {
            room: Rc::new(Room::new(worker::State::from(state), env)),
        }
    }

    pub async fn fetch(&self, req: web_sys::Request) -> Result<web_sys::Response, JsValue> {
        let response = self.room.fetch(req).await;
        let _ = self.room.unconfirmed();
        response.map_err(JsValue::from)
    }

    pub async fn alarm(&self) -> Result<JsValue, JsValue> {
        let result = self.room.alarm().await;
        let _ = self.room.unconfirmed();
        result.map(|()| JsValue::UNDEFINED).map_err(JsValue::from)
    }

    #[wasm_bindgen(js_name = webSocketMessage)]
    pub fn websocket_message(
        &self,
        ws: web_sys::WebSocket,
        message: JsValue,
    ) -> Result<JsValue, JsValue> {
        match self.room.websocket_message(ws.into(), &message) {
            Ok(Some(request)) => {
                let room = Rc::clone(&self.room);
                let answer = async move {
                    let answered = room.answer_ice(request).await;
                    answered.map(|()| JsValue::UNDEFINED).map_err(JsValue::from)
                };
                Ok(worker::wasm_bindgen_futures::future_to_promise(answer).into())
            }
            result => settled(&self.room, result.map(|_| ())),
        }
    }

    #[wasm_bindgen(js_name = webSocketClose)]
    pub fn websocket_close(
        &self,
        ws: web_sys::WebSocket,
        code: u32,
        reason: String,
        _was_clean: bool,
    ) -> Result<JsValue, JsValue> {
        let result = self.room.websocket_close(ws.into(), code as usize, &reason);
        settled(&self.room, result)
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub fn websocket_error(
        &self,
        ws: web_sys::WebSocket,
        _error: JsValue,
    ) -> Result<JsValue, JsValue> {
        let result = self.room.websocket_error(ws.into());
        settled(&self.room, result)
    }
}
