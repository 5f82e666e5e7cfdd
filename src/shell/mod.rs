//! The wasm32 shell: performs the core's decisions on the Workers runtime.

mod entry;
mod platform;
mod room_object;
