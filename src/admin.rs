//! The operator's API (`/admin/…`, docs/admin.md): who may call it (`ADMIN_SECRET`), which
//! request names which verb, and the verbs' bodies, checked before any room is looked up. The
//! verb reaches the room's object inside its [`crate::admission::Admission`]; what a verb does
//! to a room is `room::admin`'s.

use crate::route::{is_room_name, HttpError};
use crate::ticket::{parse_secrets, Secrets};
use crate::token;
use serde_json::{Map, Value};

/// Longest `reason`, in Unicode scalar values.
pub const MAX_REASON_CHARS: usize = 200;
/// Longest ban, in seconds (a day).
pub const MAX_BAN_SECONDS: u32 = 86_400;
/// Largest request body read; anything longer is `invalid-request`.
pub const MAX_BODY_BYTES: usize = 4096;

/// `ADMIN_SECRET`: whether the API exists, and who may call it.
#[derive(Debug, Clone, Default)]
pub enum AdminAccess {
    /// Unset: every `/admin/…` request is `not-found`.
    #[default]
    Off,
    /// Bearer tokens accepted (several, for rotation).
    On(Secrets),
    /// Set but without a usable value: every admin request is `config-error`.
    Unusable,
}

impl AdminAccess {
    pub fn parse(value: &str) -> AdminAccess {
        match parse_secrets(value) {
            secrets if secrets.is_empty() => AdminAccess::Unusable,
            secrets => AdminAccess::On(Secrets(secrets)),
        }
    }
}

/// What an admin request asks of a room, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminVerb {
    /// `GET /admin/rooms/{room}`.
    Inspect,
    /// `POST /admin/rooms/{room}/end`.
    End { reason: String },
    /// `POST /admin/rooms/{room}/kick`.
    Kick(Kick),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kick {
    pub target: KickTarget,
    pub reason: String,
    /// 0: no ban.
    pub ban_seconds: u32,
}

/// Whom a kick names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickTarget {
    ClientId(String),
    /// A ticket identity's `sub`.
    Sub(String),
}

/// Which verb a path and method name, before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbKind {
    Inspect,
    End,
    Kick,
}

/// Whether `path` is the API's (`/admin` or under `/admin/`).
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// Decides an admin request up to its body: the API exists, its secret is usable, the caller
/// shows one of its values, the path names a verb, the method is the verb's, the room name is
/// valid. Returns the room and the verb's kind.
pub fn route_admin<'a>(
    access: &AdminAccess,
    method: &str,
    path: &'a str,
    authorization: Option<&str>,
) -> Result<(&'a str, VerbKind), HttpError> {
    let secrets = match access {
        AdminAccess::Off => return Err(HttpError::NotFound),
        AdminAccess::Unusable => return Err(HttpError::ConfigError),
        AdminAccess::On(secrets) => secrets,
    };
    if !authorized(&secrets.0, authorization) {
        return Err(HttpError::Unauthorized);
    }
    let rest = path
        .strip_prefix("/admin/rooms/")
        .ok_or(HttpError::NotFound)?;
    let (room, kind, wanted) = match rest.split_once('/') {
        None => (rest, VerbKind::Inspect, "GET"),
        Some((room, "end")) => (room, VerbKind::End, "POST"),
        Some((room, "kick")) => (room, VerbKind::Kick, "POST"),
        Some(_) => return Err(HttpError::NotFound),
    };
    if method != wanted {
        return Err(HttpError::MethodNotAllowed);
    }
    if !is_room_name(room) {
        return Err(HttpError::InvalidRoom);
    }
    Ok((room, kind))
}

/// Whether `authorization` is `Bearer <one of secrets>`. Every secret is compared, each as a
/// hash so that neither a value's length nor its first differing byte shows in the time taken.
fn authorized(secrets: &[String], authorization: Option<&str>) -> bool {
    let Some(given) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
        return false;
    };
    let given = token::hash(given.trim());
    secrets.iter().fold(false, |found, secret| {
        found | crate::room::constant_time_eq(&token::hash(secret), &given)
    })
}

/// The verb of kind `kind` with the arguments of `body`, or `invalid-request`: not a JSON
/// object, an unknown field or one of the wrong type, a reason over [`MAX_REASON_CHARS`], a
/// ban over [`MAX_BAN_SECONDS`], a kick naming neither or both targets. `end` may have no
/// body. Read through `serde_json::Value`, which the module has anyway (see `admission`).
pub fn parse_verb(kind: VerbKind, body: &str) -> Result<AdminVerb, HttpError> {
    let invalid = HttpError::InvalidRequest;
    let body = body.trim();
    if kind == VerbKind::Inspect {
        return Ok(AdminVerb::Inspect);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid);
    }
    let fields = match (kind, body) {
        (VerbKind::End, "") => Map::new(),
        _ => match serde_json::from_str(body) {
            Ok(Value::Object(fields)) => fields,
            _ => return Err(invalid),
        },
    };
    let allowed: &[&str] = match kind {
        VerbKind::Kick => &["clientId", "sub", "reason", "banSeconds"],
        _ => &["reason"],
    };
    if fields.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid);
    }
    let text = |name: &str| match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid),
    };
    let reason = text("reason")?.unwrap_or_default();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(invalid);
    }
    if kind == VerbKind::End {
        return Ok(AdminVerb::End { reason });
    }
    let target = match (text("clientId")?, text("sub")?) {
        (Some(id), None) => KickTarget::ClientId(id),
        (None, Some(sub)) => KickTarget::Sub(sub),
        _ => return Err(invalid),
    };
    let ban_seconds = match fields.get("banSeconds") {
        None => 0,
        Some(n) => n
            .as_u64()
            .filter(|&n| n <= u64::from(MAX_BAN_SECONDS))
            .ok_or(invalid)?,
    };
    Ok(AdminVerb::Kick(Kick {
        target,
        reason,
        ban_seconds: ban_seconds as u32,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(values: &str) -> AdminAccess {
        AdminAccess::parse(values)
    }

    #[test]
    fn the_secret_decides_whether_the_api_exists() {
        let get = |access: &AdminAccess, auth| route_admin(access, "GET", "/admin/rooms/r", auth);
        assert_eq!(
            get(&AdminAccess::Off, Some("Bearer x")),
            Err(HttpError::NotFound)
        );
        for unusable in [",", " , ", ""] {
            let access = on(unusable);
            assert!(matches!(access, AdminAccess::Unusable), "{unusable:?}");
            assert_eq!(get(&access, Some("Bearer x")), Err(HttpError::ConfigError));
        }
        let access = on(" new , old ");
        for ok in ["Bearer new", "Bearer old"] {
            assert_eq!(get(&access, Some(ok)), Ok(("r", VerbKind::Inspect)), "{ok}");
        }
        for bad in [
            None,
            Some("new"),
            Some("Bearer "),
            Some("Bearer ne"),
            Some("Basic new"),
        ] {
            assert_eq!(get(&access, bad), Err(HttpError::Unauthorized), "{bad:?}");
        }
    }

    #[test]
    fn paths_and_methods() {
        let access = on("k");
        let route = |method, path| route_admin(&access, method, path, Some("Bearer k"));
        assert_eq!(
            route("POST", "/admin/rooms/r/end"),
            Ok(("r", VerbKind::End))
        );
        assert_eq!(
            route("POST", "/admin/rooms/r/kick"),
            Ok(("r", VerbKind::Kick))
        );
        for (method, path, err) in [
            ("GET", "/admin", HttpError::NotFound),
            ("GET", "/admin/rooms", HttpError::NotFound),
            ("GET", "/admin/rooms/r/x", HttpError::NotFound),
            ("POST", "/admin/rooms/r", HttpError::MethodNotAllowed),
            ("GET", "/admin/rooms/r/end", HttpError::MethodNotAllowed),
            ("DELETE", "/admin/rooms/r/kick", HttpError::MethodNotAllowed),
            ("GET", "/admin/rooms/", HttpError::InvalidRoom),
            ("GET", "/admin/rooms/a%20b", HttpError::InvalidRoom),
            ("POST", "/admin/rooms/no.dots/end", HttpError::InvalidRoom),
        ] {
            assert_eq!(route(method, path), Err(err), "{method} {path}");
        }
        // Unauthorized comes first: a caller without the secret learns nothing of the paths.
        let anon = route_admin(&access, "DELETE", "/admin/nothing", None);
        assert_eq!(anon, Err(HttpError::Unauthorized));
    }

    #[test]
    fn bodies() {
        let kick = |body| parse_verb(VerbKind::Kick, body);
        assert_eq!(
            kick(r#"{"sub":"u1","reason":"spam","banSeconds":86400}"#),
            Ok(AdminVerb::Kick(Kick {
                target: KickTarget::Sub("u1".into()),
                reason: "spam".into(),
                ban_seconds: 86_400,
            }))
        );
        assert_eq!(
            kick(r#"{"clientId":"c"}"#),
            Ok(AdminVerb::Kick(Kick {
                target: KickTarget::ClientId("c".into()),
                reason: String::new(),
                ban_seconds: 0,
            }))
        );
        let long = format!(r#"{{"sub":"u","reason":"{}"}}"#, "é".repeat(201));
        let just = format!(r#"{{"sub":"u","reason":"{}"}}"#, "é".repeat(200));
        assert!(kick(&just).is_ok());
        for bad in [
            "",
            "[]",
            "null",
            "{}",
            r#"{"clientId":"c","sub":"u"}"#,
            r#"{"sub":"u","banSeconds":86401}"#,
            r#"{"sub":"u","banSeconds":-1}"#,
            r#"{"sub":"u","banSeconds":1.5}"#,
            r#"{"sub":"u","banSeconds":"60"}"#,
            r#"{"sub":"u","banSeconds":null}"#,
            r#"{"sub":"u","reason":null}"#,
            r#"{"sub":"u","extra":1}"#,
            r#"{"sub":1}"#,
            r#"{"sub":"u""#,
            &long,
        ] {
            assert_eq!(kick(bad), Err(HttpError::InvalidRequest), "{bad}");
        }
        let end = |body| parse_verb(VerbKind::End, body);
        let ended = |reason: &str| {
            Ok(AdminVerb::End {
                reason: reason.into(),
            })
        };
        assert_eq!(end(""), ended(""));
        assert_eq!(end("{}"), ended(""));
        assert_eq!(end(r#"{"reason":"time is up"}"#), ended("time is up"));
        for bad in ["[]", r#"{"reason":5}"#, r#"{"why":"x"}"#, "{"] {
            assert_eq!(end(bad), Err(HttpError::InvalidRequest), "{bad}");
        }
    }
}
