//! HTTP routing decisions of the Worker, as a pure function of the request's method, path and
//! headers. The shell turns a [`Route`] into a response; every refusal is an [`HttpError`].

use crate::config::{AllowedOrigins, Config};
use crate::protocol::CloseCode;
use crate::ticket::{self, Identity, TicketError};
use crate::token::{from_hex, to_hex};
use serde::Serialize;

/// Longest room name accepted; names are used as Durable Object names and in URLs.
pub const MAX_ROOM_LEN: usize = 64;

/// What the Worker must do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`.
    Health,
    /// A valid WebSocket upgrade for this room: forward to its Durable Object, with the
    /// identity its ticket vouched for (when tickets are required).
    Socket {
        room: String,
        identity: Option<Identity>,
    },
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
    /// The join ticket offered (as a subprotocol or as `?ticket=`), when present.
    pub ticket: Option<&'a str>,
}

/// Who may open sockets: the origins, and the join secrets when tickets are required.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub origins: &'a AllowedOrigins,
    /// `JOIN_SECRET`'s list; empty: no tickets, open rooms.
    pub secrets: &'a [String],
    /// How far ahead a ticket's `exp` may be (`MAX_TICKET_TTL_SECONDS`).
    pub max_ticket_ttl_s: u64,
    /// Now, in unix seconds, for `exp` and `nbf`.
    pub now_s: u64,
    /// A setting that restricts access is unusable: no socket at all ([`Config::unusable`]).
    pub refused: bool,
}

impl<'a> Access<'a> {
    /// Open rooms (no tickets) for `origins`.
    pub fn open(origins: &'a AllowedOrigins) -> Self {
        Access {
            origins,
            secrets: &[],
            max_ticket_ttl_s: ticket::DEFAULT_MAX_TTL_S,
            now_s: 0,
            refused: false,
        }
    }

    /// What `config` lets in at `now_s`.
    pub fn of(config: &'a Config, now_s: u64) -> Self {
        Access {
            origins: &config.allowed_origins,
            secrets: &config.join_secrets.0,
            max_ticket_ttl_s: config.max_ticket_ttl_s,
            now_s,
            refused: config.refuses_sockets(),
        }
    }
}

/// The Rate Limiting binding that limits joins per client IP and per ticket identity.
pub const JOIN_LIMITER: &str = "JOIN_LIMITER";
/// `Retry-After` of a `too-many-joins` answer: the period of `wrangler.toml`'s limit.
pub const JOIN_LIMIT_PERIOD_S: u64 = 60;

/// The keys one join is counted under: the client's IP, and its identity with tickets.
pub fn join_limit_keys(ip: &str, identity: Option<&Identity>) -> Vec<String> {
    let mut keys = vec![format!("ip:{ip}")];
    if let Some(identity) = identity {
        keys.push(format!("sub:{}", identity.sub));
    }
    keys
}

/// The key a refusal is counted under, if it costs the client a join: every ticket refusal
/// costs its IP one, so guessing tickets or secrets is as slow as joining (no `sub:` key, as
/// a refused ticket vouches for nobody). Over the limit, the answer is `too-many-joins`.
pub fn refusal_limit_key(err: HttpError, ip: &str) -> Option<String> {
    err.is_ticket_refusal().then(|| format!("ip:{ip}"))
}

/// The header in which the Worker hands a ticket's identity to the room's object.
pub const IDENTITY_HEADER: &str = "X-Duet-Identity";

/// An identity as the header carries it: hex of its JSON (header values are Latin-1, names
/// need not be; hex needs no decoder beyond the one tokens have).
pub fn encode_identity(identity: &Identity) -> String {
    to_hex(
        serde_json::to_string(identity)
            .unwrap_or_default()
            .as_bytes(),
    )
}

pub fn decode_identity(header: &str) -> Option<Identity> {
    let json = String::from_utf8(from_hex(header.trim())?).ok()?;
    serde_json::from_str(&json).ok()
}

/// The subprotocol that names protocol v1; the 101 answer selects it when offered.
pub const SUBPROTOCOL: &str = "duet.v1";
/// The subprotocol that carries a join ticket: this prefix and the ticket.
pub const TICKET_PREFIX: &str = "duet.ticket.";
/// The subprotocol that carries a resume token: this prefix and the token.
pub const RESUME_PREFIX: &str = "duet.resume.";

/// What a client offered in `Sec-WebSocket-Protocol`: browsers cannot set headers on a
/// WebSocket, so tickets and resume tokens travel as subprotocols, out of URLs and logs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Offered<'a> {
    pub v1: bool,
    pub ticket: Option<&'a str>,
    pub resume: Option<&'a str>,
}

impl<'a> Offered<'a> {
    pub fn parse(header: Option<&'a str>) -> Self {
        let mut offered = Offered::default();
        for item in header.unwrap_or("").split(',').map(str::trim) {
            if item == SUBPROTOCOL {
                offered.v1 = true;
            } else if let Some(ticket) = item.strip_prefix(TICKET_PREFIX) {
                offered.ticket.get_or_insert(ticket);
            } else if let Some(token) = item.strip_prefix(RESUME_PREFIX) {
                offered.resume.get_or_insert(token);
            }
        }
        offered
    }
}

/// A refused request, answered as `{"error":{"code","message"}}` with `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    InvalidRoom,
    MethodNotAllowed,
    ForbiddenOrigin,
    TicketRequired,
    InvalidTicket,
    TicketTooLong,
    TicketExpired,
    TicketWrongRoom,
    UpgradeRequired,
    BadUpgrade,
    TooManyJoins,
    NotFound,
    /// A setting that restricts access is unusable (logged as `config-error`).
    ConfigError,
}

impl From<TicketError> for HttpError {
    fn from(err: TicketError) -> Self {
        match err {
            TicketError::Invalid => HttpError::InvalidTicket,
            TicketError::TooLong => HttpError::TicketTooLong,
            TicketError::Expired => HttpError::TicketExpired,
            TicketError::WrongRoom => HttpError::TicketWrongRoom,
        }
    }
}

impl HttpError {
    /// Every refusal, for the wire-constant checks of other languages.
    pub const ALL: [HttpError; 13] = [
        HttpError::InvalidRoom,
        HttpError::MethodNotAllowed,
        HttpError::ForbiddenOrigin,
        HttpError::TicketRequired,
        HttpError::InvalidTicket,
        HttpError::TicketTooLong,
        HttpError::TicketExpired,
        HttpError::TicketWrongRoom,
        HttpError::UpgradeRequired,
        HttpError::BadUpgrade,
        HttpError::TooManyJoins,
        HttpError::NotFound,
        HttpError::ConfigError,
    ];

    pub fn status(self) -> u16 {
        match self {
            HttpError::InvalidRoom | HttpError::BadUpgrade => 400,
            HttpError::TicketRequired
            | HttpError::InvalidTicket
            | HttpError::TicketTooLong
            | HttpError::TicketExpired => 401,
            HttpError::ForbiddenOrigin | HttpError::TicketWrongRoom => 403,
            HttpError::TooManyJoins => 429,
            HttpError::NotFound => 404,
            HttpError::MethodNotAllowed => 405,
            HttpError::UpgradeRequired => 426,
            HttpError::ConfigError => 503,
        }
    }

    /// A refusal of the ticket: missing, invalid, expired or for another room.
    pub fn is_ticket_refusal(self) -> bool {
        matches!(
            self,
            HttpError::TicketRequired
                | HttpError::InvalidTicket
                | HttpError::TicketTooLong
                | HttpError::TicketExpired
                | HttpError::TicketWrongRoom
        )
    }

    pub fn code(self) -> &'static str {
        match self {
            HttpError::InvalidRoom => "invalid-room",
            HttpError::MethodNotAllowed => "method-not-allowed",
            HttpError::ForbiddenOrigin => "forbidden-origin",
            HttpError::TicketRequired => "ticket-required",
            HttpError::InvalidTicket | HttpError::TicketTooLong => "invalid-ticket",
            HttpError::TicketExpired => "ticket-expired",
            HttpError::TicketWrongRoom => "ticket-wrong-room",
            HttpError::TooManyJoins => "too-many-joins",
            HttpError::UpgradeRequired => "upgrade-required",
            HttpError::BadUpgrade => "bad-upgrade",
            HttpError::NotFound => "not-found",
            HttpError::ConfigError => "config-error",
        }
    }

    fn message(self) -> &'static str {
        match self {
            HttpError::InvalidRoom => "room names are 1-64 characters of A-Z, a-z, 0-9, _ and -",
            HttpError::MethodNotAllowed => "only GET is allowed here",
            HttpError::ForbiddenOrigin => "this origin may not open sockets here",
            HttpError::TicketRequired => "this room needs a join ticket (subprotocol duet.ticket.<jwt> or ?ticket=)",
            HttpError::InvalidTicket => "the join ticket is not an HS256 JWT signed for this service",
            HttpError::TicketTooLong => {
                "the join ticket's exp is further ahead than this service allows (MAX_TICKET_TTL_SECONDS)"
            }
            HttpError::TicketExpired => "the join ticket has expired or is not valid yet",
            HttpError::TicketWrongRoom => "the join ticket is for another room",
            HttpError::TooManyJoins => "too many joins from this client; retry later",
            HttpError::UpgradeRequired => "this endpoint only accepts WebSocket upgrades",
            HttpError::BadUpgrade => {
                "a WebSocket upgrade needs Sec-WebSocket-Version 13 and a Sec-WebSocket-Key of 16 base64 bytes"
            }
            HttpError::NotFound => "no such endpoint",
            HttpError::ConfigError => {
                "this service's configuration is unusable, so it refuses every socket; its operator has the details"
            }
        }
    }

    /// The close code of this refusal when delivered in-band ([`refusal`]); `None` for the
    /// refusals that stay HTTP answers: a request a socket cannot be made for (`invalid-room`,
    /// `method-not-allowed`, `upgrade-required`, `bad-upgrade`, `not-found`), and
    /// `forbidden-origin`, whose page may not open sockets here at all.
    pub fn close_code(self) -> Option<CloseCode> {
        match self {
            HttpError::TicketRequired
            | HttpError::InvalidTicket
            | HttpError::TicketTooLong
            | HttpError::TicketExpired => Some(CloseCode::TicketRefused),
            HttpError::TicketWrongRoom => Some(CloseCode::Forbidden),
            HttpError::TooManyJoins => Some(CloseCode::TooManyJoins),
            HttpError::ConfigError => Some(CloseCode::Misconfigured),
            HttpError::InvalidRoom
            | HttpError::MethodNotAllowed
            | HttpError::ForbiddenOrigin
            | HttpError::UpgradeRequired
            | HttpError::BadUpgrade
            | HttpError::NotFound => None,
        }
    }

    /// The `error` frame of the refusal in-band: the code and message of its HTTP body, and
    /// `retryAfter` (seconds) where the HTTP answer has `Retry-After`. Written by hand around
    /// the message's JSON string: a derived serializer for one more struct costs the module
    /// more than this.
    pub fn frame(self) -> String {
        let message = serde_json::to_string(self.message()).unwrap_or_default();
        let mut text = format!(
            r#"{{"type":"error","code":"{}","message":{message}"#,
            self.code()
        );
        if let Some(s) = self.retry_after_s() {
            text.push_str(&format!(r#","retryAfter":{s}"#));
        }
        text.push('}');
        text
    }

    /// Seconds the client should wait before trying again, for `Retry-After`.
    pub fn retry_after_s(self) -> Option<u64> {
        (self == HttpError::TooManyJoins).then_some(JOIN_LIMIT_PERIOD_S)
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

/// Whether the request's origin may open sockets: no `Origin` header, the Worker's own, or
/// one `ALLOWED_ORIGINS` lets in.
fn origin_allowed(req: &RequestParts<'_>, access: &Access) -> bool {
    req.origin.is_none_or(|origin| {
        origin.eq_ignore_ascii_case(req.own_origin) || access.origins.allows(origin)
    })
}

fn is_upgrade(req: &RequestParts<'_>) -> bool {
    req.upgrade
        .is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"))
}

/// How a refusal reaches the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An HTTP response: [`HttpError::status`], [`HttpError::body`] and `Retry-After`.
    Http(HttpError),
    /// In-band: accept the socket selecting [`SUBPROTOCOL`], send `frame` (an `error` frame of
    /// protocol v1, [`HttpError::frame`]), then close it with `close`. A browser never learns
    /// the status of a refused upgrade; a frame and a close code it does.
    InBand { frame: String, close: CloseCode },
}

/// How to deliver `err`, the refusal of `req`; `v1`: the client offered `duet.v1`. In-band
/// when all of these hold, else the HTTP answer:
/// - `duet.v1` was offered: the client reads protocol v1 frames;
/// - `err` is one of the refusals of who may join ([`HttpError::close_code`]);
/// - the origin may open sockets here, so a page of a foreign origin learns no more than it
///   did (`config-error` is decided before the origin check, so it is checked here);
/// - the request is an upgrade with a handshake the runtime accepts: else there is no socket
///   to accept.
pub fn refusal(err: HttpError, req: RequestParts<'_>, access: &Access, v1: bool) -> Refusal {
    match err.close_code() {
        Some(close)
            if v1
                && origin_allowed(&req, access)
                && is_upgrade(&req)
                && check_handshake(req.ws_key, req.ws_version).is_ok() =>
        {
            Refusal::InBand {
                frame: err.frame(),
                close,
            }
        }
        _ => Refusal::Http(err),
    }
}

/// Decides what to do with a request. On `/ws/...` the checks run in the order method, room
/// name, configuration, origin, ticket, upgrade, handshake, so a refused request never
/// reaches a Durable Object.
pub fn route(req: RequestParts<'_>, access: &Access) -> Result<Route, HttpError> {
    if let Some(room) = socket_path_room(req.path) {
        if req.method != "GET" {
            return Err(HttpError::MethodNotAllowed);
        }
        if !is_room_name(room) {
            return Err(HttpError::InvalidRoom);
        }
        if access.refused {
            return Err(HttpError::ConfigError);
        }
        if !origin_allowed(&req, access) {
            return Err(HttpError::ForbiddenOrigin);
        }
        let identity = match (access.secrets, req.ticket) {
            ([], _) => None,
            (_, None) => return Err(HttpError::TicketRequired),
            (secrets, Some(t)) => Some(ticket::verify(
                t,
                secrets,
                room,
                access.now_s,
                access.max_ticket_ttl_s,
            )?),
        };
        if !is_upgrade(&req) {
            return Err(HttpError::UpgradeRequired);
        }
        check_handshake(req.ws_key, req.ws_version)?;
        return Ok(Route::Socket {
            room: room.to_owned(),
            identity,
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
            ticket: None,
        }
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn socket_routes() {
        let origins = AllowedOrigins::Any;
        let any = Access::open(&origins);
        assert_eq!(
            route(req("GET", "/ws/abc_D-9"), &any),
            Ok(Route::Socket {
                room: "abc_D-9".into(),
                identity: None
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

    /// Minted by PyJWT 2.15.1 with key `k`: room `a`, sub `ann`, exp 2,000,000,000.
    const TICKET_A: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoiYSIsInN1YiI6ImFubiIsImV4cCI6MjAwMDAwMDAwMH0.I5NWDW-8i32fqXQRI17pLLhzdf7X2TsAIUfiHjkRQi0";

    #[test]
    fn tickets_are_checked_after_the_origin_and_before_the_upgrade() {
        let origins = AllowedOrigins::List(vec!["https://friend.example".into()]);
        let secrets = vec!["k".to_owned()];
        let access = Access {
            secrets: &secrets,
            now_s: 1_999_990_000,
            ..Access::open(&origins)
        };
        let evil = RequestParts {
            origin: Some("https://evil.example"),
            ..req("GET", "/ws/a")
        };
        assert_eq!(route(evil, &access), Err(HttpError::ForbiddenOrigin));
        let no_upgrade = RequestParts {
            upgrade: None,
            ..req("GET", "/ws/a")
        };
        assert_eq!(route(no_upgrade, &access), Err(HttpError::TicketRequired));
        let garbage = RequestParts {
            ticket: Some("x.y.z"),
            upgrade: None,
            ..req("GET", "/ws/a")
        };
        assert_eq!(route(garbage, &access), Err(HttpError::InvalidTicket));
        let good = RequestParts {
            ticket: Some(TICKET_A),
            ..req("GET", "/ws/a")
        };
        match route(good, &access) {
            Ok(Route::Socket { identity, .. }) => assert_eq!(identity.unwrap().sub, "ann"),
            other => panic!("{other:?}"),
        }
        let wrong_room = RequestParts {
            ticket: Some(TICKET_A),
            ..req("GET", "/ws/b")
        };
        assert_eq!(route(wrong_room, &access), Err(HttpError::TicketWrongRoom));
        let later = Access {
            now_s: 2_000_000_031,
            ..access
        };
        assert_eq!(route(good, &later), Err(HttpError::TicketExpired));
        // More than MAX_TICKET_TTL_SECONDS (a day by default) and the leeway ahead.
        let early = Access {
            now_s: 2_000_000_000 - 86_431,
            ..access
        };
        assert_eq!(route(good, &early), Err(HttpError::TicketTooLong));
        let capped = Access {
            max_ticket_ttl_s: 86_401,
            ..early
        };
        assert!(route(good, &capped).is_ok());
        // Without JOIN_SECRET a ticket is ignored.
        assert!(matches!(
            route(good, &Access::open(&origins)),
            Ok(Route::Socket { identity: None, .. })
        ));
        for (err, status, code) in [
            (HttpError::TicketRequired, 401, "ticket-required"),
            (HttpError::InvalidTicket, 401, "invalid-ticket"),
            (HttpError::TicketTooLong, 401, "invalid-ticket"),
            (HttpError::TicketExpired, 401, "ticket-expired"),
            (HttpError::TicketWrongRoom, 403, "ticket-wrong-room"),
            (HttpError::TooManyJoins, 429, "too-many-joins"),
            (HttpError::ConfigError, 503, "config-error"),
        ] {
            assert_eq!((err.status(), err.code()), (status, code));
        }
        assert!(HttpError::TicketTooLong
            .body()
            .contains("MAX_TICKET_TTL_SECONDS"));
    }

    #[test]
    fn an_unusable_restricting_setting_refuses_every_socket() {
        let (config, _) = Config::from_vars(|name| (name == "JOIN_SECRET").then(|| ",".to_owned()));
        let access = Access::of(&config, 0);
        assert!(access.refused);
        // After the method and the room name, before the origin and the ticket.
        assert_eq!(
            route(req("GET", "/ws/a"), &access),
            Err(HttpError::ConfigError)
        );
        let evil = RequestParts {
            origin: Some("https://evil.example"),
            ticket: Some(TICKET_A),
            ..req("GET", "/ws/a")
        };
        assert_eq!(route(evil, &access), Err(HttpError::ConfigError));
        assert_eq!(
            route(req("POST", "/ws/a"), &access),
            Err(HttpError::MethodNotAllowed)
        );
        assert_eq!(
            route(req("GET", "/ws/a.b"), &access),
            Err(HttpError::InvalidRoom)
        );
        // The rest of the site is served: only sockets are refused.
        assert_eq!(route(req("GET", "/healthz"), &access), Ok(Route::Health));
        assert_eq!(route(req("GET", "/a"), &access), Ok(Route::AppPage));
        assert_eq!(HttpError::ConfigError.retry_after_s(), None);
        let body: serde_json::Value = serde_json::from_str(&HttpError::ConfigError.body()).unwrap();
        assert_eq!(body["error"]["code"], "config-error");
    }

    #[test]
    fn access_refusals_go_in_band_to_a_v1_client_that_may_open_sockets() {
        let origins = AllowedOrigins::List(vec!["https://friend.example".into()]);
        let access = Access::open(&origins);
        let friend = RequestParts {
            origin: Some("https://friend.example"),
            ..req("GET", "/ws/a")
        };
        for (err, close, frame) in [
            (
                HttpError::TicketRequired,
                4401,
                r#"{"type":"error","code":"ticket-required","message":"this room needs a join ticket (subprotocol duet.ticket.<jwt> or ?ticket=)"}"#,
            ),
            (
                HttpError::InvalidTicket,
                4401,
                r#"{"type":"error","code":"invalid-ticket","message":"the join ticket is not an HS256 JWT signed for this service"}"#,
            ),
            (
                HttpError::TicketTooLong,
                4401,
                r#"{"type":"error","code":"invalid-ticket","message":"the join ticket's exp is further ahead than this service allows (MAX_TICKET_TTL_SECONDS)"}"#,
            ),
            (
                HttpError::TicketExpired,
                4401,
                r#"{"type":"error","code":"ticket-expired","message":"the join ticket has expired or is not valid yet"}"#,
            ),
            (
                HttpError::TicketWrongRoom,
                4403,
                r#"{"type":"error","code":"ticket-wrong-room","message":"the join ticket is for another room"}"#,
            ),
            (
                HttpError::TooManyJoins,
                4429,
                r#"{"type":"error","code":"too-many-joins","message":"too many joins from this client; retry later","retryAfter":60}"#,
            ),
            (
                HttpError::ConfigError,
                4503,
                r#"{"type":"error","code":"config-error","message":"this service's configuration is unusable, so it refuses every socket; its operator has the details"}"#,
            ),
        ] {
            for parts in [req("GET", "/ws/a"), friend] {
                match refusal(err, parts, &access, true) {
                    Refusal::InBand {
                        frame: text,
                        close: code,
                    } => {
                        assert_eq!((text.as_str(), code.code()), (frame, close), "{err:?}");
                        // The same code and message as the HTTP body.
                        let body: serde_json::Value = serde_json::from_str(&err.body()).unwrap();
                        let sent: serde_json::Value = serde_json::from_str(&text).unwrap();
                        assert_eq!(body["error"]["code"], sent["code"]);
                        assert_eq!(body["error"]["message"], sent["message"]);
                    }
                    other => panic!("{err:?}: {other:?}"),
                }
            }
            // Without duet.v1, from a foreign origin, or without a handshake a socket can be
            // made for: today's HTTP answer.
            assert_eq!(
                refusal(err, req("GET", "/ws/a"), &access, false),
                Refusal::Http(err)
            );
            let foreign = RequestParts {
                origin: Some("https://evil.example"),
                ..req("GET", "/ws/a")
            };
            assert_eq!(refusal(err, foreign, &access, true), Refusal::Http(err));
            let no_upgrade = RequestParts {
                upgrade: None,
                ..req("GET", "/ws/a")
            };
            assert_eq!(refusal(err, no_upgrade, &access, true), Refusal::Http(err));
            let bad_key = RequestParts {
                ws_key: Some("short"),
                ..req("GET", "/ws/a")
            };
            assert_eq!(refusal(err, bad_key, &access, true), Refusal::Http(err));
            let old_version = RequestParts {
                ws_version: Some("8"),
                ..req("GET", "/ws/a")
            };
            assert_eq!(refusal(err, old_version, &access, true), Refusal::Http(err));
        }
        for err in [
            HttpError::InvalidRoom,
            HttpError::MethodNotAllowed,
            HttpError::ForbiddenOrigin,
            HttpError::UpgradeRequired,
            HttpError::BadUpgrade,
            HttpError::NotFound,
        ] {
            assert_eq!(err.close_code(), None, "{err:?}");
            assert_eq!(
                refusal(err, req("GET", "/ws/a"), &access, true),
                Refusal::Http(err)
            );
        }
    }

    #[test]
    fn ticket_refusals_cost_the_address_a_join() {
        for err in [
            HttpError::TicketRequired,
            HttpError::InvalidTicket,
            HttpError::TicketTooLong,
            HttpError::TicketExpired,
            HttpError::TicketWrongRoom,
        ] {
            assert_eq!(
                refusal_limit_key(err, "1.2.3.4").as_deref(),
                Some("ip:1.2.3.4")
            );
        }
        for err in [
            HttpError::InvalidRoom,
            HttpError::MethodNotAllowed,
            HttpError::ForbiddenOrigin,
            HttpError::UpgradeRequired,
            HttpError::BadUpgrade,
            HttpError::TooManyJoins,
            HttpError::NotFound,
            HttpError::ConfigError,
        ] {
            assert_eq!(refusal_limit_key(err, "1.2.3.4"), None, "{err:?}");
        }
    }

    #[test]
    fn identities_cross_to_the_object_intact() {
        let identity: Identity =
            serde_json::from_str(r#"{"sub":"zoë","name":"Zoë ✓","meta":{"a":[1]}}"#).unwrap();
        assert_eq!(
            encode_identity(&identity),
            to_hex(serde_json::to_string(&identity).unwrap().as_bytes())
        );
        let header = encode_identity(&identity);
        assert!(header.is_ascii());
        assert_eq!(decode_identity(&header), Some(identity.clone()));
        assert_eq!(decode_identity("not hex!"), None);
        assert_eq!(decode_identity("abc"), None);
        assert_eq!(
            join_limit_keys("1.2.3.4", Some(&identity)),
            ["ip:1.2.3.4", "sub:zoë"]
        );
        assert_eq!(join_limit_keys("::1", None), ["ip:::1"]);
        assert_eq!(HttpError::TooManyJoins.retry_after_s(), Some(60));
        assert_eq!(HttpError::InvalidTicket.retry_after_s(), None);
    }

    #[test]
    fn subprotocols_carry_the_ticket_and_the_resume_token() {
        assert_eq!(Offered::parse(None), Offered::default());
        let offered = Offered::parse(Some("duet.v1, duet.ticket.a.b.c,duet.resume.ff00, other"));
        assert_eq!(
            offered,
            Offered {
                v1: true,
                ticket: Some("a.b.c"),
                resume: Some("ff00")
            }
        );
        let first = Offered::parse(Some("duet.ticket.one, duet.ticket.two"));
        assert_eq!((first.v1, first.ticket), (false, Some("one")));
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
        let origins = AllowedOrigins::List(vec!["https://friend.example".into()]);
        let list = Access::open(&origins);
        let bad_everything = RequestParts {
            method: "HEAD",
            path: "/ws/a/b",
            origin: Some("https://evil.example"),
            own_origin: "https://duet.example",
            upgrade: None,
            ws_key: None,
            ws_version: None,
            ticket: None,
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
        let origins = AllowedOrigins::List(vec!["https://friend.example".into()]);
        let list = Access::open(&origins);
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
        assert!(route(
            with("https://anyone.example"),
            &Access::open(&AllowedOrigins::Any)
        )
        .is_ok());
        assert_eq!(
            route(
                with("https://friend.example"),
                &Access::open(&AllowedOrigins::List(vec![]))
            ),
            Err(HttpError::ForbiddenOrigin)
        );
    }

    #[test]
    fn other_routes() {
        let origins = AllowedOrigins::Any;
        let any = Access::open(&origins);
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
