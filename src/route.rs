//! HTTP routing decisions of the Worker, as a pure function of the request's method, path and
//! headers. The shell turns a [`Route`] into a response; every refusal is an [`HttpError`].

use crate::config::AllowedOrigins;
use serde::Serialize;

/// Longest room name accepted; names are used as Durable Object names and in URLs.
pub const MAX_ROOM_LEN: usize = 64;

/// What the Worker must do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`.
    Health,
    /// A valid WebSocket upgrade for this room: forward to its Durable Object.
    Socket { room: String },
    /// `/{room}`: serve the app page, which joins that room.
    AppPage,
    /// Anything else: the static assets decide.
    Asset,
}

/// The parts of a request that routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The `Origin` header, when present.
    pub origin: Option<&'a str>,
    /// The Worker's own origin (`scheme://host[:port]` of the request URL).
    pub own_origin: &'a str,
    /// The `Upgrade` header, when present.
    pub upgrade: Option<&'a str>,
    /// `Sec-WebSocket-Key` and `Sec-WebSocket-Version`, when present.
    pub ws_key: Option<&'a str>,
    pub ws_version: Option<&'a str>,
}

/// A refused request, answered as `{"error":{"code","message"}}` with `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    InvalidRoom,
    MethodNotAllowed,
    ForbiddenOrigin,
    UpgradeRequired,
    BadUpgrade,
    NotFound,
}

impl HttpError {
    pub fn status(self) -> u16 {
        match self {
            HttpError::InvalidRoom | HttpError::BadUpgrade => 400,
            HttpError::ForbiddenOrigin => 403,
            HttpError::NotFound => 404,
            HttpError::MethodNotAllowed => 405,
            HttpError::UpgradeRequired => 426,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            HttpError::InvalidRoom => "invalid-room",
            HttpError::MethodNotAllowed => "method-not-allowed",
            HttpError::ForbiddenOrigin => "forbidden-origin",
            HttpError::UpgradeRequired => "upgrade-required",
            HttpError::BadUpgrade => "bad-upgrade",
            HttpError::NotFound => "not-found",
        }
    }

    fn message(self) -> &'static str {
        match self {
            HttpError::InvalidRoom => "room names are 1-64 characters of A-Z, a-z, 0-9, _ and -",
            HttpError::MethodNotAllowed => "only GET is allowed here",
            HttpError::ForbiddenOrigin => "this origin may not open sockets here",
            HttpError::UpgradeRequired => "this endpoint only accepts WebSocket upgrades",
            HttpError::BadUpgrade => {
                "a WebSocket upgrade needs Sec-WebSocket-Version 13 and a Sec-WebSocket-Key of 16 base64 bytes"
            }
            HttpError::NotFound => "no such endpoint",
        }
    }

    /// The JSON body of the error response.
    pub fn body(self) -> String {
        #[derive(Serialize)]
        struct Body {
            error: Inner,
        }
        #[derive(Serialize)]
        struct Inner {
            code: &'static str,
            message: &'static str,
        }
        serde_json::to_string(&Body {
            error: Inner {
                code: self.code(),
                message: self.message(),
            },
        })
        .unwrap_or_default()
    }
}

/// The parts of an absolute request URL as the runtime hands it over (already normalized:
/// `scheme://authority/path?query`), split without a URL parser, whose Unicode tables would
/// be most of the Worker's size.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `scheme://authority`, the request's own origin.
    pub origin: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

impl<'a> UrlParts<'a> {
    pub fn split(url: &'a str) -> Option<Self> {
        let authority_start = url.find("://")? + 3;
        let rest = &url[authority_start..];
        let path_start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let origin = &url[..authority_start + path_start];
        let rest = &rest[path_start..];
        let rest = rest.split('#').next().unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        Some(UrlParts {
            origin,
            path: if path.is_empty() { "/" } else { path },
            query,
        })
    }

    /// The first value of query parameter `name`, as sent (room tokens need no decoding).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }
}

/// Whether `name` is a valid room name.
pub fn is_room_name(name: &str) -> bool {
    (1..=MAX_ROOM_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The room named by a `/ws/{room}` path, if the path is under `/ws`.
pub fn socket_path_room(path: &str) -> Option<&str> {
    if path == "/ws" {
        return Some("");
    }
    path.strip_prefix("/ws/")
}

/// Refuses an upgrade the runtime would refuse after the room had counted it: a key that is
/// not 16 bytes in base64, or a version other than 13 (RFC 6455, 4.2.1).
pub fn check_handshake(key: Option<&str>, version: Option<&str>) -> Result<(), HttpError> {
    let key_ok = key.map(str::trim).is_some_and(|k| {
        k.len() == 24
            && k.ends_with("==")
            && k[..22]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    });
    if key_ok && version.map(str::trim) == Some("13") {
        Ok(())
    } else {
        Err(HttpError::BadUpgrade)
    }
}

/// Decides what to do with a request. On `/ws/...` the checks run in the order method, room
/// name, origin, upgrade, so a refused origin never reaches a Durable Object.
pub fn route(req: RequestParts<'_>, allowed: &AllowedOrigins) -> Result<Route, HttpError> {
    if let Some(room) = socket_path_room(req.path) {
        if req.method != "GET" {
            return Err(HttpError::MethodNotAllowed);
        }
        if !is_room_name(room) {
            return Err(HttpError::InvalidRoom);
        }
        if let Some(origin) = req.origin {
            if !origin.eq_ignore_ascii_case(req.own_origin) && !allowed.allows(origin) {
                return Err(HttpError::ForbiddenOrigin);
            }
        }
        if !req
            .upgrade
            .is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"))
        {
            return Err(HttpError::UpgradeRequired);
        }
        check_handshake(req.ws_key, req.ws_version)?;
        return Ok(Route::Socket {
            room: room.to_owned(),
        });
    }
    if req.path == "/healthz" {
        return match req.method {
            "GET" | "HEAD" => Ok(Route::Health),
            _ => Err(HttpError::MethodNotAllowed),
        };
    }
    if req.path == "/api" || req.path.starts_with("/api/") {
        return Err(HttpError::NotFound);
    }
    match req.path.strip_prefix('/') {
        Some(name) if is_room_name(name) => Ok(Route::AppPage),
        _ => Ok(Route::Asset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &'static str, path: &'static str) -> RequestParts<'static> {
        RequestParts {
            method,
            path,
            origin: None,
            own_origin: "https://duet.example",
            upgrade: Some("websocket"),
            ws_key: Some(KEY),
            ws_version: Some("13"),
        }
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn socket_routes() {
        let any = AllowedOrigins::Any;
        assert_eq!(
            route(req("GET", "/ws/abc_D-9"), &any),
            Ok(Route::Socket {
                room: "abc_D-9".into()
            })
        );
        let long = "/ws/".to_owned() + &"a".repeat(64);
        let r = RequestParts {
            path: &long,
            ..req("GET", "")
        };
        assert!(matches!(route(r, &any), Ok(Route::Socket { .. })));
        let too_long = "/ws/".to_owned() + &"a".repeat(65);
        let r = RequestParts {
            path: &too_long,
            ..req("GET", "")
        };
        assert_eq!(route(r, &any), Err(HttpError::InvalidRoom));
        for path in [
            "/ws", "/ws/", "/ws/a/", "/ws/a/b", "/ws/a.b", "/ws/%20", "/ws/é",
        ] {
            assert_eq!(
                route(req("GET", path), &any),
                Err(HttpError::InvalidRoom),
                "{path}"
            );
        }
    }

    #[test]
    fn handshakes_the_runtime_would_refuse() {
        assert_eq!(check_handshake(Some(KEY), Some("13")), Ok(()));
        for (key, version) in [
            (None, Some("13")),
            (Some(KEY), None),
            (Some(KEY), Some("8")),
            (Some(""), Some("13")),
            (Some("dGhlIHNhbXBsZSBub25jZQ"), Some("13")),
            (Some("dGhlIHNhbXBsZSBub25jZQ=x"), Some("13")),
            (Some("dGhlIHNhbXBsZSBub25j*Q=="), Some("13")),
        ] {
            assert_eq!(
                check_handshake(key, version),
                Err(HttpError::BadUpgrade),
                "{key:?} {version:?}"
            );
        }
        assert_eq!(HttpError::BadUpgrade.status(), 400);
        assert!(HttpError::BadUpgrade
            .body()
            .contains(r#""code":"bad-upgrade""#));
    }

    #[test]
    fn socket_checks_run_in_order() {
        let list = AllowedOrigins::List(vec!["https://friend.example".into()]);
        let bad_everything = RequestParts {
            method: "HEAD",
            path: "/ws/a/b",
            origin: Some("https://evil.example"),
            own_origin: "https://duet.example",
            upgrade: None,
            ws_key: None,
            ws_version: None,
        };
        assert_eq!(
            route(bad_everything, &list),
            Err(HttpError::MethodNotAllowed)
        );
        let r = RequestParts {
            method: "GET",
            ..bad_everything
        };
        assert_eq!(route(r, &list), Err(HttpError::InvalidRoom));
        let r = RequestParts { path: "/ws/a", ..r };
        assert_eq!(route(r, &list), Err(HttpError::ForbiddenOrigin));
        let r = RequestParts {
            origin: Some("https://friend.example"),
            ..r
        };
        assert_eq!(route(r, &list), Err(HttpError::UpgradeRequired));
        let r = RequestParts {
            upgrade: Some("WebSocket"),
            ..r
        };
        assert_eq!(route(r, &list), Err(HttpError::BadUpgrade));
        let r = RequestParts {
            ws_key: Some(KEY),
            ws_version: Some("13"),
            ..r
        };
        assert!(matches!(route(r, &list), Ok(Route::Socket { .. })));
        // An empty Origin header is present, and no listed origin.
        let r = RequestParts {
            origin: Some(""),
            ..r
        };
        assert_eq!(route(r, &list), Err(HttpError::ForbiddenOrigin));
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
            assert_eq!(
                route(req(method, "/ws/a"), &list),
                Err(HttpError::MethodNotAllowed)
            );
        }
    }

    #[test]
    fn origins() {
        let list = AllowedOrigins::List(vec!["https://friend.example".into()]);
        let with = |origin| RequestParts {
            origin: Some(origin),
            ..req("GET", "/ws/a")
        };
        assert!(route(with("https://duet.example"), &list).is_ok());
        assert!(route(with("https://friend.example"), &list).is_ok());
        assert!(route(req("GET", "/ws/a"), &list).is_ok());
        assert_eq!(
            route(with("http://duet.example"), &list),
            Err(HttpError::ForbiddenOrigin)
        );
        assert_eq!(route(with("null"), &list), Err(HttpError::ForbiddenOrigin));
        assert!(route(with("https://anyone.example"), &AllowedOrigins::Any).is_ok());
        assert_eq!(
            route(
                with("https://friend.example"),
                &AllowedOrigins::List(vec![])
            ),
            Err(HttpError::ForbiddenOrigin)
        );
    }

    #[test]
    fn other_routes() {
        let any = AllowedOrigins::Any;
        assert_eq!(route(req("GET", "/healthz"), &any), Ok(Route::Health));
        assert_eq!(
            route(req("POST", "/healthz"), &any),
            Err(HttpError::MethodNotAllowed)
        );
        assert_eq!(
            route(req("GET", "/api/rooms"), &any),
            Err(HttpError::NotFound)
        );
        assert_eq!(route(req("GET", "/api"), &any), Err(HttpError::NotFound));
        assert_eq!(route(req("GET", "/my-room"), &any), Ok(Route::AppPage));
        assert_eq!(route(req("GET", "/"), &any), Ok(Route::Asset));
        assert_eq!(route(req("GET", "/index.html"), &any), Ok(Route::Asset));
        assert_eq!(route(req("GET", "/js/app.js"), &any), Ok(Route::Asset));
    }

    #[test]
    fn splits_urls() {
        let u = UrlParts::split("https://duet.example:8443/ws/room?resume=abc&x=1#frag").unwrap();
        assert_eq!(
            u,
            UrlParts {
                origin: "https://duet.example:8443",
                path: "/ws/room",
                query: "resume=abc&x=1"
            }
        );
        assert_eq!(u.param("resume"), Some("abc"));
        assert_eq!(u.param("x"), Some("1"));
        assert_eq!(u.param("y"), None);
        let bare = UrlParts::split("http://127.0.0.1:8787").unwrap();
        assert_eq!(
            (bare.origin, bare.path, bare.query),
            ("http://127.0.0.1:8787", "/", "")
        );
        let q = UrlParts::split("http://h?resume=&resume=2").unwrap();
        assert_eq!((q.path, q.param("resume")), ("/", Some("")));
        assert_eq!(UrlParts::split("no scheme"), None);
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            HttpError::UpgradeRequired.body(),
            r#"{"error":{"code":"upgrade-required","message":"this endpoint only accepts WebSocket upgrades"}}"#
        );
        assert_eq!(HttpError::UpgradeRequired.status(), 426);
    }
}
