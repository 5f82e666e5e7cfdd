//! The Worker's `fetch`: routes by [`crate::route::route`], decides everything about a socket
//! or an admin request once and hands the room's Durable Object a typed
//! [`crate::admission::Admission`] (returning its 101 or its answer untouched), refuses as
//! [`crate::route::refusal`] decides (an HTTP error, or in-band on a socket of its own), and
//! serves the app from the assets binding.

use super::platform::{self, json_response};
use crate::admin::{parse_verb, route_admin, VerbKind};
use crate::admission::{Admission, Door, Join, ADMISSION_HEADER};
use crate::config::Config;
use crate::effect::LogEvent;
use crate::placement::location_hint;
use crate::route::{
    join_limit_keys, refusal, refusal_limit_key, route, Access, HttpError, Offered, Refusal,
    RequestParts, Route, UrlParts, JOIN_LIMITER, SUBPROTOCOL,
};
use crate::token;
use worker::{event, Context, Env, Request, Result, WebSocketPair};

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
            platform::log_error(&LogEvent::problem("internal-error", err.to_string()));
            json_response(
                500,
                r#"{"error":{"code":"internal","message":"internal error"}}"#,
            )
        }
    }
}

/// The headers routing reads, read once.
struct Heads {
    origin: Option<String>,
    upgrade: Option<String>,
    ws_key: Option<String>,
    ws_version: Option<String>,
    protocols: Option<String>,
    ip: String,
}

impl Heads {
    fn read(headers: &web_sys::Headers) -> Result<Heads> {
        Ok(Heads {
            origin: headers.get("Origin")?,
            upgrade: headers.get("Upgrade")?,
            ws_key: headers.get("Sec-WebSocket-Key")?,
            ws_version: headers.get("Sec-WebSocket-Version")?,
            protocols: headers.get("Sec-WebSocket-Protocol")?,
            // The client's address, as the join limit keys it.
            ip: headers.get("CF-Connecting-IP")?.unwrap_or_default(),
        })
    }
}

async fn handle(req: web_sys::Request, env: &Env) -> Result<web_sys::Response> {
    let config = platform::config(env);
    let url_text = req.url();
    let url = UrlParts::split(&url_text).ok_or("request URL without a scheme")?;
    let heads = Heads::read(&req.headers())?;
    let offered = Offered::parse(heads.protocols.as_deref());
    let method = req.method();
    let parts = RequestParts {
        method: &method,
        path: url.path,
        origin: heads.origin.as_deref(),
        own_origin: url.origin,
        upgrade: heads.upgrade.as_deref(),
        ws_key: heads.ws_key.as_deref(),
        ws_version: heads.ws_version.as_deref(),
        ticket: offered.ticket.or_else(|| url.param("ticket")),
    };
    let access = Access::of(&config, platform::now_ms() / 1000);
    // How a refusal of this request is delivered: in-band to a client that can read it.
    let answer = |err| deliver(refusal(err, parts, &access, offered.v1));
    match route(parts, &access) {
        Err(err) => answer(limit_refusal(env, &heads.ip, err).await?),
        Ok(Route::Health) => json_response(
            200,
            concat!(
                r#"{"status":"ok","version":""#,
                env!("CARGO_PKG_VERSION"),
                r#""}"#
            ),
        ),
        Ok(Route::Socket { room, identity }) => {
            if let Err(err) = spend_join(env, &join_limit_keys(&heads.ip, identity.as_ref())).await
            {
                return answer(err);
            }
            let join = Join {
                v1: offered.v1,
                resume_hash: token::resume_hash(offered.resume.or_else(|| url.param("resume"))),
                identity,
                address: Some(heads.ip).filter(|ip| !ip.is_empty()),
            };
            to_room(&req, env, &config, &room, Door::Join(join)).await
        }
        Ok(Route::Admin) => admin(req, env, &config, url.path, &heads.ip).await,
        Ok(Route::AppPage) => assets(env, Some(url.origin), req).await,
        Ok(Route::Asset) => assets(env, None, req).await,
    }
}

/// The app page (`origin`'s `/`), or the asset `req` asks for.
async fn assets(
    env: &Env,
    app_page_of: Option<&str>,
    req: web_sys::Request,
) -> Result<web_sys::Response> {
    let assets = env.assets("ASSETS")?;
    let req = match app_page_of {
        // A plain GET built by the runtime: `Fetcher::fetch` would convert a workers-rs
        // `RequestInit`, which brings serde-wasm-bindgen into the module for its `cf` field.
        Some(origin) => web_sys::Request::new_with_str(&format!("{origin}/"))?,
        None => req,
    };
    assets
        .fetch_request(Request::from(req))
        .await
        .map(Into::into)
}

/// An admin request: who asks, which verb, its body, all checked here; then the verb goes to
/// the room's object, which answers.
async fn admin(
    req: web_sys::Request,
    env: &Env,
    config: &Config,
    path: &str,
    ip: &str,
) -> Result<web_sys::Response> {
    let authorization = req.headers().get("Authorization")?;
    let checked = route_admin(&config.admin, &req.method(), path, authorization.as_deref());
    let (room, kind) = match checked {
        Ok(checked) => checked,
        Err(err) => return error_response(limit_refusal(env, ip, err).await?),
    };
    let body = match kind {
        VerbKind::Inspect => String::new(),
        _ => body_text(&req).await?,
    };
    match parse_verb(kind, &body) {
        Ok(verb) => to_room(&req, env, config, room, Door::Admin(verb)).await,
        Err(err) => error_response(err),
    }
}

/// The request's body as text (`parse_verb` refuses one over `MAX_BODY_BYTES`).
async fn body_text(req: &web_sys::Request) -> Result<String> {
    let text = js_sys::futures::JsFuture::from(req.text()?).await?;
    Ok(text.as_string().unwrap_or_default())
}

/// The refusal a refused request gets. A ticket or admin secret refusal costs the address a
/// join first, so guessing is limited like joining: once the address has none left, the
/// answer is `too-many-joins`. Only refusals wait for the limiter here, never a join.
async fn limit_refusal(env: &Env, ip: &str, err: HttpError) -> Result<HttpError> {
    if let Some(key) = refusal_limit_key(err, ip) {
        if let Err(over) = spend_join_key(env, &key).await {
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

/// Hands `door` to room `room`'s Durable Object, placed near the client (and in the
/// jurisdiction, if one is set), and returns its answer.
async fn to_room(
    req: &web_sys::Request,
    env: &Env,
    config: &Config,
    room: &str,
    door: Door,
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
        platform::log(&LogEvent {
            location_hint: hint,
            jurisdiction: config.room_jurisdiction,
            ..LogEvent::room("placement", room)
        });
    }
    let mut rooms = env.durable_object("ROOMS")?;
    if let Some(jurisdiction) = config.room_jurisdiction {
        rooms = platform::in_jurisdiction(&rooms, jurisdiction)?;
    }
    let upgrade = matches!(door, Door::Join(_));
    let admission = Admission::new(room, door).encode();
    let forwarded = platform::admission_request(&admission, ADMISSION_HEADER, upgrade)?;
    platform::room_fetch(&rooms, room, hint, &forwarded).await
}

/// The one place an [`HttpError`] becomes a response.
fn error_response(err: HttpError) -> Result<web_sys::Response> {
    let response = json_response(err.status(), &err.body())?;
    if let Some(s) = err.retry_after_s() {
        response.headers().set("Retry-After", &s.to_string())?;
    }
    Ok(response)
}

/// Spends one join of `key`'s allowance at the `JOIN_LIMITER` binding, or refuses the request
/// over it. Without the binding there is no limit, which is logged once.
async fn spend_join_key(env: &Env, key: &str) -> std::result::Result<(), HttpError> {
    match platform::within_limit(env, JOIN_LIMITER, key).await {
        Some(true) => Ok(()),
        Some(false) => Err(HttpError::TooManyJoins),
        None => {
            if !LIMITER_WARNED.replace(true) {
                platform::log_error(&LogEvent::problem(
                    "config-error",
                    "no JOIN_LIMITER rate limiting binding: joins are not limited".to_owned(),
                ));
            }
            Ok(())
        }
    }
}

/// Spends a join of every key of a join (over any limit, the join is refused). With a ticket,
/// the IP's and the identity's limits are asked at once: the join waits for one round trip to
/// the limiter, not two.
async fn spend_join(env: &Env, keys: &[String]) -> std::result::Result<(), HttpError> {
    if let [ip, sub] = keys {
        let (ip, sub) =
            futures_util::future::join(spend_join_key(env, ip), spend_join_key(env, sub)).await;
        return ip.and(sub);
    }
    for key in keys {
        spend_join_key(env, key).await?;
    }
    Ok(())
}

thread_local! {
    static LIMITER_WARNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
