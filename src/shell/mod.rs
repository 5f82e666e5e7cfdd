//! The wasm32 shell: performs the core's decisions on the Workers runtime.

mod cloudflare_turn;
mod codec;
mod entry;
mod platform;
mod room_class;
mod room_object;
mod storage;
mod webhook;
