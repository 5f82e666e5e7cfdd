//! The Worker's `fetch`: routes by [`crate::route::route`], forwards sockets to the room's
//! Durable Object (returning its 101 untouched), refuses as [`crate::route::refusal`] decides
//! (an HTTP error, or in-band on a socket of its own), and serves the app from the assets
//! binding.

use super::platform;
use crate::config::Config;
use crate::placement::location_hint;
use crate::route::{
    encode_identity, join_limit_keys, refusal, refusal_limit_key, route, Access, HttpError,
    Offered, Refusal, RequestParts, Route, UrlParts, IDENTITY_HEADER, JOIN_LIMITER, SUBPROTOCOL,
};
use crate::ticket::Identity;
use worker::{
    console_error, console_log, event, Context, Env, Headers, Request, Response, Result,
    WebSocketPair,
};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Takes and returns the runtime's own `Request` and `Response`: a socket's 101 passes through
/// as the room's object made it, and no request is converted that the route does not need
/// (workers-rs' `Request` reads the URL, the headers and `request.cf` up front).
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    match handle(req, &env).await {
        Ok(response) => Ok(response),
        Err(err) => {
            // Details go to the log only; the client gets a fixed message.
            console_error!(
                "{}",
                serde_json::json!({"event": "internal-error", "message": err.to_string()})
            );
            json_response(
                500,
                r#"{"error":{"code":"internal","message":"internal error"}}"#,
            )
        }
    }
}

async fn handle(req: web_sys::Request, env: &Env) -> Result<web_sys::Response> {
    let config = platform::config(env);
    let url_text = req.url();
    let url = UrlParts::split(&url_text).ok_or("request URL without a scheme")?;
    let headers = req.headers();
    let origin = headers.get("Origin")?;
    let upgrade = headers.get("Upgrade")?;
    let ws_key = headers.get("Sec-WebSocket-Key")?;
    let ws_version = headers.get("Sec-WebSocket-Version")?;
    let protocols = headers.get("Sec-WebSocket-Protocol")?;
    let offered = Offered::parse(protocols.as_deref());
    let method = req.method();
    let parts = RequestParts {
        method: &method,
        path: url.path,
        origin: origin.as_deref(),
        own_origin: url.origin,
        upgrade: upgrade.as_deref(),
        ws_key: ws_key.as_deref(),
        ws_version: ws_version.as_deref(),
        ticket: offered.ticket.or_else(|| url.param("ticket")),
    };
    let access = Access::of(&config, platform::now_ms() / 1000);
    // How a refusal of this request is delivered: in-band to a client that can read it.
    let answer = |err| deliver(refusal(err, parts, &access, offered.v1));
    match route(parts, &access) {
        Err(err) => answer(limit_refusal(env, &headers, err).await?),
        Ok(Route::Health) => json_response(
            200,
            &serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}).to_string(),
        ),
        Ok(Route::Socket { room, identity }) => {
            let ip = client_ip(&headers)?;
            if let Err(err) = check_join_limits(env, &join_limit_keys(&ip, identity.as_ref())).await
            {
                return answer(err);
            }
            to_room(&req, env, &config, &room, identity.as_ref()).await
        }
        Ok(Route::AppPage) => {
            // A plain GET built by the runtime: `Fetcher::fetch` would convert a workers-rs
            // `RequestInit`, which brings serde-wasm-bindgen into the module for its `cf` field.
            let index = web_sys::Request::new_with_str(&format!("{}/", url.origin))?;
            let assets = env.assets("ASSETS")?;
            assets
                .fetch_request(Request::from(index))
                .await
                .map(Into::into)
        }
        Ok(Route::Asset) => {
            let assets = env.assets("ASSETS")?;
            assets
                .fetch_request(Request::from(req))
                .await
                .map(Into::into)
        }
    }
}

/// The client's address, as the join limit keys it.
fn client_ip(headers: &web_sys::Headers) -> Result<String> {
    Ok(headers.get("CF-Connecting-IP")?.unwrap_or_default())
}

/// The refusal a refused request gets. A ticket refusal costs the address a join first, so
/// guessing tickets is limited like joining: once the address has none left, the answer is
/// `too-many-joins`. Only refusals wait for the limiter here, never a join.
async fn limit_refusal(env: &Env, headers: &web_sys::Headers, err: HttpError) -> Result<HttpError> {
    if let Some(key) = refusal_limit_key(err, &client_ip(headers)?) {
        if let Err(over) = check_join_limit(env, &key).await {
            return Ok(over);
        }
    }
    Ok(err)
}

/// Performs a refusal: an HTTP answer, or a socket of the Worker's own (no Durable Object is
/// touched) that carries the `error` frame and closes at once. A plain socket, not a
/// hibernating one: it lives for one frame, and closing it here also ends its connection.
fn deliver(refusal: Refusal) -> Result<web_sys::Response> {
    match refusal {
        Refusal::Http(err) => error_response(err),
        Refusal::InBand { frame, close } => {
            let pair = WebSocketPair::new()?;
            pair.server.accept()?;
            pair.server.send_with_str(&frame)?;
            pair.server
                .close(Some(close.code()), Some(close.reason()))?;
            platform::socket_response(&pair.client, Some(SUBPROTOCOL))
        }
    }
}

/// Forwards an admitted socket to its room's Durable Object, placed near the client (and in
/// the jurisdiction, if one is set), with the identity its ticket vouched for.
async fn to_room(
    req: &web_sys::Request,
    env: &Env,
    config: &Config,
    room: &str,
    identity: Option<&Identity>,
) -> Result<web_sys::Response> {
    let cf = platform::cf(req);
    let field = |key| cf.as_ref().and_then(|cf| platform::cf_field(cf, key));
    let hint = location_hint(
        field("continent").as_deref(),
        field("country").as_deref(),
        cf.as_ref()
            .and_then(|cf| platform::cf_number(cf, "longitude")),
    );
    if config.log_level.writes_info() {
        console_log!(
            "{}",
            serde_json::json!({
                "event": "placement",
                "room": room,
                "locationHint": hint,
                "jurisdiction": config.room_jurisdiction,
            })
        );
    }
    let mut rooms = env.durable_object("ROOMS")?;
    if let Some(jurisdiction) = config.room_jurisdiction {
        rooms = platform::in_jurisdiction(&rooms, jurisdiction)?;
    }
    match identity {
        None => platform::room_fetch(&rooms, room, hint, req).await,
        Some(identity) => {
            let forwarded = with_identity(req, identity)?;
            platform::room_fetch(&rooms, room, hint, &forwarded).await
        }
    }
}

/// The one place an [`HttpError`] becomes a response.
fn error_response(err: HttpError) -> Result<web_sys::Response> {
    let mut response = json(err.status(), &err.body())?;
    if let Some(s) = err.retry_after_s() {
        response.headers_mut().set("Retry-After", &s.to_string())?;
    }
    Ok(response.into())
}

/// Refuses a join over the `JOIN_LIMITER` binding's limit for `key`. Without the binding
/// there is no limit, which is logged once.
async fn check_join_limit(env: &Env, key: &str) -> std::result::Result<(), HttpError> {
    match platform::within_limit(env, JOIN_LIMITER, key).await {
        Some(true) => Ok(()),
        Some(false) => Err(HttpError::TooManyJoins),
        None => {
            if !LIMITER_WARNED.replace(true) {
                console_error!(
                    r#"{{"event":"config-error","message":"no JOIN_LIMITER rate limiting binding: joins are not limited"}}"#
                );
            }
            Ok(())
        }
    }
}

/// Checks every key of a join (over any limit, the join is refused). With a ticket, the IP's
/// and the identity's limits are asked at once: the join waits for one round trip to the
/// limiter, not two.
async fn check_join_limits(env: &Env, keys: &[String]) -> std::result::Result<(), HttpError> {
    if let [ip, sub] = keys {
        let (ip, sub) =
            futures_util::future::join(check_join_limit(env, ip), check_join_limit(env, sub)).await;
        return ip.and(sub);
    }
    for key in keys {
        check_join_limit(env, key).await?;
    }
    Ok(())
}

thread_local! {
    static LIMITER_WARNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The socket request for the room's object, carrying the identity the ticket vouched for in
/// a header of its own; whatever the client sent under that name is replaced. Built with the
/// runtime's own `Request`: workers-rs' `RequestInit` would bring its `cf` serializer along.
fn with_identity(req: &web_sys::Request, identity: &Identity) -> Result<web_sys::Request> {
    let headers = web_sys::Headers::new_with_headers(req.headers().as_ref())?;
    headers.set(IDENTITY_HEADER, &encode_identity(identity))?;
    let init = web_sys::RequestInit::new();
    init.set_headers(headers.as_ref());
    Ok(web_sys::Request::new_with_request_and_init(req, &init)?)
}

fn json_response(status: u16, body: &str) -> Result<web_sys::Response> {
    json(status, body).map(Into::into)
}

fn json(status: u16, body: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    headers.set("Cache-Control", "no-store")?;
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers))
}
