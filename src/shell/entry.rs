//! The Worker's `fetch`: routes by [`crate::route::route`], forwards sockets to the room's
//! Durable Object (returning its 101 untouched), and serves the app from the assets binding.

use super::platform;
use crate::placement::location_hint;
use crate::route::{route, HttpError, RequestParts, Route, UrlParts};
use worker::{console_error, console_log, event, Context, Env, Headers, Request, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
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

async fn handle(req: Request, env: &Env) -> Result<Response> {
    let config = platform::config(env);
    let url_text = req.inner().url();
    let url = UrlParts::split(&url_text).ok_or("request URL without a scheme")?;
    let headers = req.headers();
    let origin = headers.get("Origin")?;
    let upgrade = headers.get("Upgrade")?;
    let ws_key = headers.get("Sec-WebSocket-Key")?;
    let ws_version = headers.get("Sec-WebSocket-Version")?;
    let method = req.method();
    let parts = RequestParts {
        method: method.as_ref(),
        path: url.path,
        origin: origin.as_deref(),
        own_origin: url.origin,
        upgrade: upgrade.as_deref(),
        ws_key: ws_key.as_deref(),
        ws_version: ws_version.as_deref(),
    };
    match route(parts, &config.allowed_origins) {
        Err(err) => error_response(err),
        Ok(Route::Health) => json_response(
            200,
            &serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}).to_string(),
        ),
        Ok(Route::Socket { room }) => {
            let cf = |key| platform::cf_field(&req, key);
            let hint = location_hint(
                cf("continent").as_deref(),
                cf("country").as_deref(),
                platform::cf_number(&req, "longitude"),
            );
            console_log!(
                "{}",
                serde_json::json!({
                    "event": "placement",
                    "room": room,
                    "locationHint": hint,
                    "jurisdiction": config.room_jurisdiction,
                })
            );
            let mut rooms = env.durable_object("ROOMS")?;
            if let Some(jurisdiction) = config.room_jurisdiction {
                rooms = platform::in_jurisdiction(&rooms, jurisdiction)?;
            }
            let stub = match hint {
                Some(hint) => rooms.get_by_name_with_location_hint(&room, hint)?,
                None => rooms.get_by_name(&room)?,
            };
            stub.fetch_with_request(req).await
        }
        Ok(Route::AppPage) => {
            let index = format!("{}/", url.origin);
            env.assets("ASSETS")?.fetch(index, None).await
        }
        Ok(Route::Asset) => env.assets("ASSETS")?.fetch_request(req).await,
    }
}

/// The one place an [`HttpError`] becomes a response.
fn error_response(err: HttpError) -> Result<Response> {
    json_response(err.status(), &err.body())
}

fn json_response(status: u16, body: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    headers.set("Cache-Control", "no-store")?;
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers))
}
