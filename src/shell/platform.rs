//! Small bridges to the runtime: clock, randomness, `[vars]`, logging, and the one
//! hibernation call workers-rs does not bind.

use crate::config::Config;
use crate::effect::LogEvent;
use crate::token::to_hex;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{console_error, console_log, Env};

#[wasm_bindgen]
extern "C" {
    /// `DurableObjectState`, for the one method workers-rs does not bind.
    type StateExt;

    /// When the runtime last answered this socket's ping by auto-response, or null.
    #[wasm_bindgen(method, catch, js_name = getWebSocketAutoResponseTimestamp)]
    fn get_web_socket_auto_response_timestamp(
        this: &StateExt,
        ws: &web_sys::WebSocket,
    ) -> Result<JsValue, JsValue>;
}

#[wasm_bindgen]
extern "C" {
    /// `DurableObjectNamespace`, for `jurisdiction()`, which workers-rs does not bind.
    type NamespaceExt;

    #[wasm_bindgen(method, catch)]
    fn jurisdiction(this: &NamespaceExt, name: &str) -> Result<JsValue, JsValue>;
}

/// The namespace whose objects (and their storage) stay inside `jurisdiction`.
pub fn in_jurisdiction(
    rooms: &worker::ObjectNamespace,
    jurisdiction: &str,
) -> worker::Result<worker::ObjectNamespace> {
    let ns: &JsValue = rooms.as_ref();
    let restricted = ns
        .unchecked_ref::<NamespaceExt>()
        .jurisdiction(jurisdiction)?;
    Ok(worker::ObjectNamespace::unchecked_from_js(restricted))
}

/// `request.cf`, read once: each read of it builds the object afresh.
pub fn cf(req: &web_sys::Request) -> Option<JsValue> {
    js_sys::Reflect::get(req, &JsValue::from_str("cf"))
        .ok()
        .filter(JsValue::is_object)
}

/// A text field of `request.cf`, read without trusting its shape.
pub fn cf_field(cf: &JsValue, key: &str) -> Option<String> {
    js_sys::Reflect::get(cf, &JsValue::from_str(key))
        .ok()?
        .as_string()
}

/// A number of `request.cf`, which the runtime may give as a number or as text.
pub fn cf_number(cf: &JsValue, key: &str) -> Option<f64> {
    let value = js_sys::Reflect::get(cf, &JsValue::from_str(key)).ok()?;
    value.as_f64().or_else(|| {
        // JavaScript's own parser: Rust's f64 parser would add 4 KB of wasm for this.
        let text = value.as_string()?;
        let n = js_sys::Number::parse_float(text.trim());
        n.is_finite().then_some(n)
    })
}

pub fn now_ms() -> u64 {
    // js_sys's static Date.now() makes no Date object, unlike worker::Date::now().
    js_sys::Date::now() as u64
}

/// `bytes` random bytes from the runtime's CSPRNG, as hex.
pub fn random_hex(bytes: usize) -> worker::Result<String> {
    let mut buf = vec![0u8; bytes];
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    scope.crypto()?.get_random_values_with_u8_array(&mut buf)?;
    Ok(to_hex(&buf))
}

/// Milliseconds of the runtime's last auto-response pong on `ws`, if any.
pub fn auto_response_ms(state: &worker::State, ws: &worker::WebSocket) -> Option<u64> {
    let value = state
        .as_raw()
        .unchecked_ref::<StateExt>()
        .get_web_socket_auto_response_timestamp(ws.as_ref())
        .ok()?;
    let date = value.dyn_into::<js_sys::Date>().ok()?;
    let ms = date.get_time();
    ms.is_finite().then_some(ms as u64)
}

/// A `[vars]` value as text: strings as they are, numbers and objects as JSON.
fn var(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(name)).ok()?;
    if value.is_undefined() || value.is_null() {
        return None;
    }
    value.as_string().or_else(|| {
        js_sys::JSON::stringify(&value)
            .ok()
            .and_then(|s| s.as_string())
    })
}

thread_local! {
    static CONFIG: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

/// The isolate's configuration, parsed once; each problem is logged once, loudly.
pub fn config(env: &Env) -> Rc<Config> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            let (config, warnings) = Config::from_vars(|name| var(env, name));
            for warning in warnings {
                log_error(&LogEvent::problem("config-error", warning.to_string()));
            }
            Rc::new(config)
        })
        .clone()
    })
}

/// One JSON line per lifecycle event.
pub fn log(event: &LogEvent) {
    if let Ok(line) = serde_json::to_string(event) {
        console_log!("{line}");
    }
}

/// One JSON line about a problem, written whatever `LOG_LEVEL` says.
pub fn log_error(event: &LogEvent) {
    if let Ok(line) = serde_json::to_string(event) {
        console_error!("{line}");
    }
}

/// A JSON answer that no cache keeps.
pub fn json_response(status: u16, body: &str) -> worker::Result<web_sys::Response> {
    let headers = web_sys::Headers::new()?;
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    headers.set("Cache-Control", "no-store")?;
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(headers.as_ref());
    Ok(web_sys::Response::new_with_opt_str_and_init(
        Some(body),
        &init,
    )?)
}

/// The request that carries an admission (in header `header`) to a room's object: nothing of
/// the client's request but, for a socket, `Upgrade`, without which the runtime would not
/// pass the object's 101 on.
pub fn admission_request(
    admission: &str,
    header: &str,
    upgrade: bool,
) -> worker::Result<web_sys::Request> {
    let headers = web_sys::Headers::new()?;
    headers.set(header, admission)?;
    if upgrade {
        headers.set("Upgrade", "websocket")?;
    }
    let init = web_sys::RequestInit::new();
    init.set_headers(headers.as_ref());
    Ok(web_sys::Request::new_with_str_and_init(
        "https://room.duet.internal/",
        &init,
    )?)
}

#[wasm_bindgen]
extern "C" {
    /// A Workers Rate Limiting binding (`[[ratelimits]]`), bound by hand: workers-rs' own
    /// binding pulls in serde-wasm-bindgen for one boolean.
    type RateLimitBinding;

    #[wasm_bindgen(method, catch)]
    fn limit(this: &RateLimitBinding, options: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

/// Whether `key` is within the limit of binding `name`: `None` when the binding is missing
/// or fails (then there is no limit).
pub async fn within_limit(env: &Env, name: &str, key: &str) -> Option<bool> {
    let binding = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(name)).ok()?;
    if binding.is_undefined() || binding.is_null() {
        return None;
    }
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key)).ok()?;
    let promise = binding
        .unchecked_ref::<RateLimitBinding>()
        .limit(&options)
        .ok()?;
    let outcome = js_sys::futures::JsFuture::from(promise).await.ok()?;
    js_sys::Reflect::get(&outcome, &JsValue::from_str("success"))
        .ok()?
        .as_bool()
}

/// The 101 that hands `client` to the runtime, built as one runtime `Response`: workers-rs'
/// `Response::from_websocket` and its conversion build it twice, through a `ResponseInit` of
/// five fields, which cost more per join than the Durable Object's own work (bench/BASELINE.md,
/// "Where a join's time goes").
pub fn socket_response(
    client: &worker::WebSocket,
    protocol: Option<&str>,
) -> worker::Result<web_sys::Response> {
    use worker::worker_sys::ext::ResponseInitExt;
    let mut init = web_sys::ResponseInit::new();
    init.set_status(101);
    if let Some(protocol) = protocol {
        let headers = web_sys::Headers::new()?;
        headers.set("Sec-WebSocket-Protocol", protocol)?;
        init.set_headers(headers.as_ref());
    }
    init.websocket(client.as_ref())?;
    Ok(web_sys::Response::new_with_opt_str_and_init(None, &init)?)
}

/// The room's Durable Object's answer to `req`, as the runtime gave it: workers-rs' `Stub`
/// would rebuild the response on the way in and again on the way out of the Worker.
pub async fn room_fetch(
    rooms: &worker::ObjectNamespace,
    name: &str,
    location_hint: Option<&str>,
    req: &web_sys::Request,
) -> worker::Result<web_sys::Response> {
    let namespace: &JsValue = rooms.as_ref();
    let namespace = namespace.unchecked_ref::<worker::worker_sys::DurableObjectNamespace>();
    let stub = match location_hint {
        Some(hint) => {
            let options = js_sys::Object::new();
            js_sys::Reflect::set(&options, &JsValue::from_str("locationHint"), &hint.into())?;
            namespace.get_by_name_with_options(name, &options)?
        }
        None => namespace.get_by_name(name)?,
    };
    let response = js_sys::futures::JsFuture::from(stub.fetch_with_request(req)?).await?;
    Ok(response.unchecked_into())
}

/// A `POST` of `body` with `headers`, built with the runtime's own `Request`: workers-rs'
/// `RequestInit` would bring its `cf` serializer (and serde-wasm-bindgen) into the module.
pub fn post_request(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> worker::Result<worker::Request> {
    let list = web_sys::Headers::new()?;
    for (name, value) in headers {
        list.set(name, value)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(list.as_ref());
    init.set_body(&JsValue::from_str(body));
    let request = web_sys::Request::new_with_str_and_init(url, &init)?;
    Ok(worker::Request::from(request))
}
