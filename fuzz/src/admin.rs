//! An admin request as the Worker reads it (`admin::route_admin`, `admin::parse_verb`) and the
//! admission it hands the room (`admission::Admission`).
//!
//! Input, one field a line (`~` or a missing line: absent): method, path, `Authorization`, the
//! `ADMIN_SECRET` value; every line after those is the body.
//!
//! Checked:
//! - `route_admin` answers exactly what a reference written from docs/admin.md answers, with
//!   the checks in the documented order (API exists, secret usable, caller's secret, path,
//!   method, room name);
//! - `parse_verb` refuses with `invalid-request` only, and accepts only a body that is empty
//!   (for `end`) or a JSON object of the documented fields with their types and ranges: a
//!   reason of at most 200 Unicode scalar values, for a kick exactly one of `clientId` and `sub`
//!   and a `banSeconds` from 0 to 86400;
//! - an accepted verb written back as a body parses to the same verb, and its admission crosses
//!   to the room unchanged.

use super::fields;
use duet::admin::{
    is_admin_path, parse_verb, route_admin, AdminAccess, AdminVerb, KickTarget, VerbKind,
    MAX_BAN_SECONDS, MAX_REASON_CHARS,
};
use duet::admission::{Admission, Door};
use duet::route::{is_room_name, HttpError};
use serde_json::{json, Value};

/// The answer the docs give.
fn reference<'a>(
    secrets: Option<&str>,
    method: &str,
    path: &'a str,
    authorization: Option<&str>,
) -> Result<(&'a str, VerbKind), HttpError> {
    let Some(value) = secrets else {
        return Err(HttpError::NotFound);
    };
    let values: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Err(HttpError::ConfigError);
    }
    let given = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim);
    if !given.is_some_and(|g| values.contains(&g)) {
        return Err(HttpError::Unauthorized);
    }
    let rest = path
        .strip_prefix("/admin/rooms/")
        .ok_or(HttpError::NotFound)?;
    let parts: Vec<&str> = rest.splitn(2, '/').collect();
    let (room, kind, method_wanted) = match parts.as_slice() {
        [room] => (*room, VerbKind::Inspect, "GET"),
        [room, "end"] => (*room, VerbKind::End, "POST"),
        [room, "kick"] => (*room, VerbKind::Kick, "POST"),
        _ => return Err(HttpError::NotFound),
    };
    if method != method_wanted {
        return Err(HttpError::MethodNotAllowed);
    }
    if !is_room_name(room) {
        return Err(HttpError::InvalidRoom);
    }
    Ok((room, kind))
}

/// Whether an accepted verb is one the docs allow for `body`.
fn allowed(kind: VerbKind, body: &str, verb: &AdminVerb) {
    if kind == VerbKind::Inspect {
        assert_eq!(*verb, AdminVerb::Inspect);
        return;
    }
    let body = body.trim();
    let fields = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(fields)) => fields,
        _ => {
            assert!(
                body.is_empty() && kind == VerbKind::End,
                "accepted {body:?}"
            );
            return;
        }
    };
    let names: &[&str] = match kind {
        VerbKind::Kick => &["clientId", "sub", "reason", "banSeconds"],
        _ => &["reason"],
    };
    assert!(fields.keys().all(|k| names.contains(&k.as_str())), "{body}");
    let reason = match verb {
        AdminVerb::Inspect => return,
        AdminVerb::End { reason } => reason,
        AdminVerb::Kick(kick) => {
            let targets = ["clientId", "sub"]
                .iter()
                .filter(|k| fields.contains_key(**k))
                .count();
            assert_eq!(targets, 1, "{body}");
            assert!(kick.ban_seconds <= MAX_BAN_SECONDS);
            &kick.reason
        }
    };
    assert!(reason.chars().count() <= MAX_REASON_CHARS);
}

/// The body that asks for `verb`.
fn body_of(verb: &AdminVerb) -> String {
    match verb {
        AdminVerb::Inspect => String::new(),
        AdminVerb::End { reason } => json!({ "reason": reason }).to_string(),
        AdminVerb::Kick(kick) => {
            let (name, value) = match &kick.target {
                KickTarget::ClientId(id) => ("clientId", id),
                KickTarget::Sub(sub) => ("sub", sub),
            };
            json!({ name: value, "reason": kick.reason, "banSeconds": kick.ban_seconds })
                .to_string()
        }
    }
}

pub fn check(data: &[u8]) {
    let head = fields(data, 4);
    let text = String::from_utf8_lossy(data);
    let body = text.splitn(5, '\n').nth(4).unwrap_or("");
    let method = head[0].as_deref().unwrap_or("GET");
    let path = head[1].as_deref().unwrap_or("/admin");
    let secret = head[3].as_deref();
    let access = secret.map_or(AdminAccess::Off, AdminAccess::parse);
    if !is_admin_path(path) {
        return;
    }
    let got = route_admin(&access, method, path, head[2].as_deref());
    assert_eq!(
        got,
        reference(secret, method, path, head[2].as_deref()),
        "{method} {path}"
    );
    for kind in [VerbKind::Inspect, VerbKind::End, VerbKind::Kick] {
        match parse_verb(kind, body) {
            Err(err) => assert_eq!(err, HttpError::InvalidRequest),
            Ok(verb) => {
                allowed(kind, body, &verb);
                assert_eq!(parse_verb(kind, &body_of(&verb)), Ok(verb.clone()));
                let admission = Admission::new("r", Door::Admin(verb));
                assert_eq!(Admission::decode(&admission.encode()), Some(admission));
            }
        }
    }
}
