//! The room's storage (key `room`, and the alarm), performed without waiting for it.
//!
//! Reads and writes of the room go through the synchronous KV API of a SQLite-backed object
//! (`ctx.storage.kv`, the same table as the asynchronous `get`/`put`). The alarm calls and
//! `deleteAll` return promises that nothing needs to await before the frames that depend on
//! them are sent: the runtime's output gate holds every outgoing frame and response until the
//! writes issued before it are durable, and if one fails it discards them and resets the
//! object. A handler waits for them once, at its end, or hands them to the runtime with its
//! result, so a failure still fails the event.
//!
//! The room as last read or written is kept in memory: this object is its only writer, so the
//! copy is exact for as long as the instance lives; after an eviction it is read again. How it
//! is encoded is `codec`'s.

use super::codec::{decode, encode};
use crate::room_state::RoomState;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::Result;

const ROOM_KEY: &str = "room";

#[wasm_bindgen]
extern "C" {
    /// `DurableObjectStorage`, for what workers-rs binds only asynchronously or not at all.
    type StorageExt;

    #[wasm_bindgen(method, getter)]
    fn kv(this: &StorageExt) -> SyncKv;

    #[wasm_bindgen(method, catch, js_name = setAlarm)]
    fn set_alarm(this: &StorageExt, at_ms: f64) -> std::result::Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = deleteAll)]
    fn delete_all(this: &StorageExt) -> std::result::Result<js_sys::Promise, JsValue>;

    /// `ctx.storage.kv`: synchronous get and put.
    type SyncKv;

    #[wasm_bindgen(method, catch)]
    fn get(this: &SyncKv, key: &str) -> std::result::Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn put(this: &SyncKv, key: &str, value: &JsValue) -> std::result::Result<(), JsValue>;
}

pub struct RoomStorage {
    storage: StorageExt,
    kv: SyncKv,
    /// The stored room: `None` until read, `Some(None)` when nothing is stored.
    room: RefCell<Option<Option<RoomState>>>,
    /// Writes issued but not yet confirmed, for the handler to return.
    pending: RefCell<Vec<js_sys::Promise>>,
}

impl RoomStorage {
    pub fn new(storage: worker::Storage) -> RoomStorage {
        let raw: &JsValue = storage.as_raw().as_ref();
        let storage: StorageExt = raw.clone().unchecked_into();
        let kv = storage.kv();
        RoomStorage {
            storage,
            kv,
            room: RefCell::new(None),
            pending: RefCell::new(Vec::new()),
        }
    }

    pub fn load(&self) -> Result<Option<RoomState>> {
        if let Some(room) = &*self.room.borrow() {
            return Ok(room.clone());
        }
        let room = decode::<RoomState>(self.kv.get(ROOM_KEY)?)?;
        *self.room.borrow_mut() = Some(room.clone());
        Ok(room)
    }

    /// Stores `room` and, with `alarm_at`, arms the alarm for then (ms since the epoch). Both
    /// are issued in the same turn, so the runtime commits them as one write.
    pub fn save(&self, room: RoomState, alarm_at: Option<u64>) -> Result<()> {
        // Unknown until the write is known to have been issued.
        *self.room.borrow_mut() = None;
        self.kv.put(ROOM_KEY, &encode(&room)?)?;
        *self.room.borrow_mut() = Some(Some(room));
        match alarm_at {
            Some(at) => self.rearm(at),
            None => Ok(()),
        }
    }

    /// Deletes everything. `deleteAll()`, though dearer than deleting the one key
    /// (bench/BASELINE.md), also drops the SQLite database's metadata, which would otherwise
    /// stay billed for every room name ever used; since compatibility date 2026-02-24 it also
    /// deletes the alarm.
    pub fn clear(&self) -> Result<()> {
        *self.room.borrow_mut() = None;
        let done = self.storage.delete_all()?;
        self.pending.borrow_mut().push(done);
        *self.room.borrow_mut() = Some(None);
        Ok(())
    }

    /// Arms the alarm for `at` (ms since the epoch; the API takes a number as absolute).
    pub fn rearm(&self, at: u64) -> Result<()> {
        let done = self.storage.set_alarm(at as f64)?;
        self.pending.borrow_mut().push(done);
        Ok(())
    }

    /// What the handler returns to the runtime: the writes still unconfirmed, as one promise,
    /// or `undefined` when there are none.
    pub fn take_pending(&self) -> JsValue {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        match pending.len() {
            0 => JsValue::UNDEFINED,
            1 => pending
                .into_iter()
                .next()
                .map_or(JsValue::UNDEFINED, JsValue::from),
            _ => {
                let all: js_sys::Array = pending.into_iter().collect();
                js_sys::Promise::all(&all).into()
            }
        }
    }
}
