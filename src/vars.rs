//! Reading `[vars]` values: the warning a bad value turns into, what a bad value of a setting
//! that restricts access does instead of falling back, and the number parser every setting
//! shares. A leaf module, so `config` and `turn` can both use it without a cycle.

use std::fmt;

/// A configuration value that was ignored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub name: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let instead = match fails_closed(self.name) {
            None => "using the default",
            Some(Closed::OwnOriginOnly) => "only the Worker's own origin may open sockets",
            Some(Closed::EverySocket) => {
                "every socket is refused (503 config-error) until it is fixed"
            }
            Some(Closed::EveryAdminRequest) => {
                "every admin request is refused (503 config-error) until it is fixed"
            }
        };
        write!(f, "invalid {}: {}; {instead}", self.name, self.problem)
    }
}

/// What an invalid value of a setting that restricts access does. Never its default: the
/// default of an access setting is the open one, and a typo must not open what the operator
/// meant to close (docs/protocol.md, "Configuration").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// `ALLOWED_ORIGINS`: no origin is allowed but the Worker's own.
    OwnOriginOnly,
    /// `JOIN_SECRET` without a usable key, `ROOM_JURISDICTION` not a jurisdiction: no socket
    /// is served at all.
    EverySocket,
    /// `ADMIN_SECRET` without a usable value: the admin API answers nothing but
    /// `config-error`.
    EveryAdminRequest,
}

/// How the setting `name` fails closed, if it restricts access; `None` for every other
/// setting, whose invalid values fall back to the default.
pub fn fails_closed(name: &str) -> Option<Closed> {
    match name {
        "ALLOWED_ORIGINS" => Some(Closed::OwnOriginOnly),
        "JOIN_SECRET" | "ROOM_JURISDICTION" => Some(Closed::EverySocket),
        "ADMIN_SECRET" => Some(Closed::EveryAdminRequest),
        _ => None,
    }
}

/// A whole number within `min..=max`, or the problem in words.
pub fn parse_int(v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is not a whole number from {min} to {max}")),
    }
}

/// A `[vars]` lookup over fixed pairs, for tests.
#[cfg(test)]
pub(crate) fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}
