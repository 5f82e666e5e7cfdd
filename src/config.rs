//! Configuration from wrangler `[vars]`. A bad value is reported as a [`ConfigWarning`] (the
//! shell logs it loudly) and the default is used instead, except for a setting that restricts
//! access, which fails closed ([`crate::vars::fails_closed`]): an unusable `ALLOWED_ORIGINS`
//! allows only the Worker's own origin, and an unusable `JOIN_SECRET` or `ROOM_JURISDICTION`
//! refuses every socket ([`Config::unusable`]).

use crate::admin::AdminAccess;
use crate::effect::LogLevel;
use crate::placement::parse_jurisdiction;
use crate::ticket::{parse_secrets, Secrets, DEFAULT_MAX_TTL_S};
use crate::turn::TurnSettings;
pub use crate::vars::ConfigWarning;
use crate::vars::{fails_closed, parse_int, Closed};
use crate::webhook::{parse_settings, WebhookSettings};
use serde_json::value::RawValue;
use serde_json::Value;

pub const DEFAULT_ICE_SERVERS: &str = r#"[{"urls":"stun:stun.cloudflare.com:3478"}]"#;
/// The platform refuses WebSocket frames over 1 MiB, so a larger limit could never apply.
pub const MAX_MESSAGE_BYTES_CEILING: usize = 1 << 20;
/// Largest `MAX_TICKET_TTL_SECONDS`: a year.
pub const MAX_TICKET_TTL_CEILING: u64 = 365 * 86_400;

/// Who may open sockets besides the Worker's own origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    Any,
    List(Vec<String>),
}

impl AllowedOrigins {
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// The effective configuration of a Worker isolate and its Durable Objects.
#[derive(Debug, Clone)]
pub struct Config {
    pub allowed_origins: AllowedOrigins,
    /// A validated JSON array of RTCIceServer objects, passed to clients verbatim.
    pub ice_servers: Box<RawValue>,
    pub max_message_bytes: usize,
    pub rate_limit_burst: u32,
    pub rate_limit_per_sec: f64,
    pub resume_grace_ms: u64,
    pub stale_after_ms: u64,
    /// A socket that has sent nothing (no ping, no message) for this long may lose its slot to
    /// a newcomer: it may never have been a real client (`UNCONFIRMED_AFTER_MS`).
    pub unconfirmed_after_ms: u64,
    /// TURN services whose credentials are added to `ice_servers` per client.
    pub turn: TurnSettings,
    /// Keeps every room's Durable Object (and its storage) inside this jurisdiction.
    pub room_jurisdiction: Option<&'static str>,
    /// `JOIN_SECRET`: with any secret, every socket needs a join ticket signed with one.
    pub join_secrets: Secrets,
    /// `MAX_TICKET_TTL_SECONDS`: how far ahead a ticket's `exp` may be.
    pub max_ticket_ttl_s: u64,
    /// The settings that restrict access whose values are unusable (`JOIN_SECRET` without a
    /// key, `ROOM_JURISDICTION` not a jurisdiction): while any is, every socket is refused.
    pub unusable: Vec<&'static str>,
    /// `WEBHOOK_URL` and `WEBHOOK_SECRET`: where lifecycle events are POSTed, if anywhere.
    pub webhook: Option<WebhookSettings>,
    /// `LOG_LEVEL`: which log lines are written.
    pub log_level: LogLevel,
    /// `ADMIN_SECRET`: whether the operator's API exists, and its bearer secrets.
    pub admin: AdminAccess,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allowed_origins: AllowedOrigins::Any,
            ice_servers: default_ice_servers(),
            max_message_bytes: 65_536,
            rate_limit_burst: 100,
            rate_limit_per_sec: 20.0,
            resume_grace_ms: 15_000,
            stale_after_ms: 60_000,
            unconfirmed_after_ms: 10_000,
            turn: TurnSettings::default(),
            room_jurisdiction: None,
            join_secrets: Secrets::default(),
            max_ticket_ttl_s: DEFAULT_MAX_TTL_S,
            unusable: Vec::new(),
            webhook: None,
            log_level: LogLevel::Info,
            admin: AdminAccess::Off,
        }
    }
}

fn default_ice_servers() -> Box<RawValue> {
    RawValue::from_string(DEFAULT_ICE_SERVERS.to_owned())
        .unwrap_or_else(|_| Box::<RawValue>::default())
}

/// The `[vars]` as read: each setting's value, trimmed, and the warnings so far.
struct Reader<'a, G> {
    get: &'a G,
    warnings: Vec<ConfigWarning>,
}

impl<G: Fn(&str) -> Option<String>> Reader<'_, G> {
    fn value(&self, name: &str) -> Option<String> {
        (self.get)(name).map(|v| v.trim().to_owned())
    }

    /// Hands `name`'s value, when set, to `apply`; a problem it returns becomes a warning.
    fn read(&mut self, name: &'static str, apply: impl FnOnce(String) -> Result<(), String>) {
        if let Some(value) = self.value(name) {
            self.check(name, apply(value));
        }
    }

    fn check(&mut self, name: &'static str, outcome: Result<(), String>) {
        if let Err(problem) = outcome {
            self.warnings.push(ConfigWarning { name, problem });
        }
    }
}

impl Config {
    /// Builds the configuration from a lookup of variable names (absent → default).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> (Config, Vec<ConfigWarning>) {
        let mut config = Config::default();
        let mut vars = Reader {
            get: &get,
            warnings: Vec::new(),
        };
        config.read_limits(&mut vars);
        config.read_access(&mut vars);
        let webhook = parse_settings(
            vars.value("WEBHOOK_URL").as_deref(),
            get("WEBHOOK_SECRET").as_deref(),
        );
        vars.check("WEBHOOK_URL", webhook.map(|w| config.webhook = w));
        vars.read("ADMIN_SECRET", |v| {
            config.admin = AdminAccess::parse(&v);
            match config.admin {
                AdminAccess::Unusable => {
                    Err("it is set but holds no value (only commas or spaces)".to_owned())
                }
                _ => Ok(()),
            }
        });
        vars.read("LOG_LEVEL", |v| {
            LogLevel::parse(&v).map(|l| config.log_level = l)
        });
        let mut warnings = vars.warnings;
        let (turn, turn_warnings) = TurnSettings::from_vars(&get);
        config.turn = turn;
        warnings.extend(turn_warnings);
        config.unusable = warnings
            .iter()
            .map(|w| w.name)
            .filter(|name| fails_closed(name) == Some(Closed::EverySocket))
            .collect();
        (config, warnings)
    }

    /// The settings that decide who may connect, and where rooms live.
    fn read_access(&mut self, vars: &mut Reader<impl Fn(&str) -> Option<String>>) {
        vars.read("ALLOWED_ORIGINS", |v| {
            // Invalid: an empty list, not the default `*`, so only the Worker's own origin.
            let (origins, outcome) = match parse_origins(&v) {
                Ok(origins) => (origins, Ok(())),
                Err(problem) => (AllowedOrigins::List(vec![]), Err(problem)),
            };
            self.allowed_origins = origins;
            outcome
        });
        vars.read("ROOM_JURISDICTION", |v| {
            parse_jurisdiction(&v).map(|j| self.room_jurisdiction = j)
        });
        vars.read("JOIN_SECRET", |v| {
            // Without a key it does not turn tickets off: `unusable` refuses every socket.
            self.join_secrets = Secrets(parse_secrets(&v));
            if self.join_secrets.0.is_empty() {
                Err("it is set but holds no key (only commas or spaces)".to_owned())
            } else {
                Ok(())
            }
        });
        vars.read("MAX_TICKET_TTL_SECONDS", |v| {
            parse_int(&v, 1, MAX_TICKET_TTL_CEILING).map(|n| self.max_ticket_ttl_s = n)
        });
    }

    /// The ICE servers, and the limits on frames, rates and times.
    fn read_limits(&mut self, vars: &mut Reader<impl Fn(&str) -> Option<String>>) {
        vars.read("ICE_SERVERS", |v| {
            parse_ice_servers(v).map(|s| self.ice_servers = s)
        });
        vars.read("MAX_MESSAGE_BYTES", |v| {
            parse_int(&v, 1, MAX_MESSAGE_BYTES_CEILING as u64)
                .map(|n| self.max_message_bytes = n as usize)
        });
        vars.read("RATE_LIMIT_BURST", |v| {
            parse_int(&v, 1, 1_000_000).map(|n| self.rate_limit_burst = n as u32)
        });
        vars.read("RATE_LIMIT_PER_SEC", |v| match parse_decimal(&v) {
            Some(n) if n > 0.0 && n <= 1_000_000.0 => {
                self.rate_limit_per_sec = n;
                Ok(())
            }
            _ => Err(format!("{v:?} is not a number above 0")),
        });
        vars.read("RESUME_GRACE_MS", |v| {
            parse_int(&v, 0, 86_400_000).map(|n| self.resume_grace_ms = n)
        });
        vars.read("STALE_AFTER_MS", |v| {
            parse_int(&v, 1, 86_400_000).map(|n| self.stale_after_ms = n)
        });
        vars.read("UNCONFIRMED_AFTER_MS", |v| {
            parse_int(&v, 1, 86_400_000).map(|n| self.unconfirmed_after_ms = n)
        });
    }

    /// Whether this configuration lets in nothing that `other` refuses: no socket while `other`
    /// refuses every one; only origins `other` allows; tickets whenever `other` needs them,
    /// signed with keys it accepts; its jurisdiction; no ticket lifetime it would refuse. What
    /// the fail-closed property compares (the config fuzz target, the tests below).
    pub fn at_most_as_open(&self, other: &Config) -> bool {
        if self.refuses_sockets() || other.refuses_sockets() {
            return self.refuses_sockets();
        }
        let origins = match (&self.allowed_origins, &other.allowed_origins) {
            (_, AllowedOrigins::Any) => true,
            (AllowedOrigins::Any, _) => false,
            (AllowedOrigins::List(a), AllowedOrigins::List(b)) => a
                .iter()
                .all(|o| b.iter().any(|p| p.eq_ignore_ascii_case(o))),
        };
        let (keys_a, keys_b) = (&self.join_secrets.0, &other.join_secrets.0);
        let tickets =
            keys_b.is_empty() || (!keys_a.is_empty() && keys_a.iter().all(|k| keys_b.contains(k)));
        let place =
            other.room_jurisdiction.is_none() || self.room_jurisdiction == other.room_jurisdiction;
        origins && tickets && place && self.max_ticket_ttl_s <= other.max_ticket_ttl_s
    }

    /// Whether every socket is refused, for a setting that restricts access is unusable.
    pub fn refuses_sockets(&self) -> bool {
        !self.unusable.is_empty()
    }
}

/// A plain decimal like `20` or `0.5`. Written out rather than `str::parse::<f64>`, whose
/// general algorithm costs 4 KB of wasm for a value read once per isolate.
fn parse_decimal(v: &str) -> Option<f64> {
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    if whole.len() > 9 || fraction.len() > 9 {
        return None;
    }
    let int = |s: &str| s.parse::<u32>().map_or(0.0, f64::from);
    Some(int(whole) + int(fraction) / 10f64.powi(fraction.len() as i32))
}

fn parse_origins(v: &str) -> Result<AllowedOrigins, String> {
    if v == "*" {
        return Ok(AllowedOrigins::Any);
    }
    let mut list = Vec::new();
    for origin in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if !is_origin(origin) {
            return Err(format!(
                "{origin:?} is not an origin like https://example.com"
            ));
        }
        list.push(origin.to_owned());
    }
    Ok(AllowedOrigins::List(list))
}

/// `scheme://host[:port]` with nothing after the authority, as browsers send `Origin`.
fn is_origin(o: &str) -> bool {
    let Some((scheme, authority)) = o.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', ' '])
}

fn parse_ice_servers(v: String) -> Result<Box<RawValue>, String> {
    // Read as `turn::merge` reads it, so TURN entries can be appended without losing it; and
    // as values, since serde's derived structs would take an array for an object.
    let servers: Vec<Value> = serde_json::from_str(&v)
        .map_err(|e| format!("not a JSON array of {{\"urls\": ...}} objects ({e})"))?;
    let urls_ok = servers.iter().all(|s| match s.get("urls") {
        Some(Value::String(u)) => !u.is_empty(),
        Some(Value::Array(list)) => {
            !list.is_empty()
                && list
                    .iter()
                    .all(|u| u.as_str().is_some_and(|u| !u.is_empty()))
        }
        _ => false,
    });
    if !urls_ok {
        return Err("an ICE server is not an object with non-empty urls".to_owned());
    }
    RawValue::from_string(v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vars::vars;

    fn parse(pairs: &[(&str, &str)]) -> (Config, Vec<ConfigWarning>) {
        Config::from_vars(vars(pairs))
    }

    #[test]
    fn defaults_when_unset() {
        let (c, w) = parse(&[]);
        assert!(w.is_empty());
        assert_eq!(c.allowed_origins, AllowedOrigins::Any);
        assert_eq!(c.ice_servers.get(), DEFAULT_ICE_SERVERS);
        assert_eq!(c.max_message_bytes, 65_536);
        assert_eq!(c.rate_limit_burst, 100);
        assert_eq!(c.rate_limit_per_sec, 20.0);
        assert_eq!(c.resume_grace_ms, 15_000);
        assert_eq!(c.stale_after_ms, 60_000);
        assert_eq!(c.unconfirmed_after_ms, 10_000);
        assert_eq!(c.log_level, LogLevel::Info);
    }

    #[test]
    fn unconfirmed_after_is_a_positive_whole_number_of_ms() {
        let (c, w) = parse(&[("UNCONFIRMED_AFTER_MS", "2500")]);
        assert_eq!((c.unconfirmed_after_ms, w.len()), (2_500, 0));
        for bad in ["0", "-1", "soon", "86400001"] {
            let (c, w) = parse(&[("UNCONFIRMED_AFTER_MS", bad)]);
            assert_eq!(
                (c.unconfirmed_after_ms, w[0].name),
                (10_000, "UNCONFIRMED_AFTER_MS")
            );
        }
    }

    #[test]
    fn reads_valid_values() {
        let (c, w) = parse(&[
            (
                "ALLOWED_ORIGINS",
                " https://a.example , http://localhost:3000 ",
            ),
            (
                "ICE_SERVERS",
                r#"[{"urls":["turn:t.example:3478"],"username":"u","credential":"c"}]"#,
            ),
            ("MAX_MESSAGE_BYTES", "1024"),
            ("RATE_LIMIT_BURST", "5"),
            ("RATE_LIMIT_PER_SEC", "0.5"),
            ("RESUME_GRACE_MS", "0"),
            ("STALE_AFTER_MS", "2000"),
            ("ROOM_JURISDICTION", "eu"),
            ("LOG_LEVEL", "warn"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.log_level, LogLevel::Warn);
        assert_eq!(
            c.allowed_origins,
            AllowedOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
        assert!(c.allowed_origins.allows("HTTPS://A.example"));
        assert!(!c.allowed_origins.allows("https://b.example"));
        assert_eq!(
            c.ice_servers.get(),
            r#"[{"urls":["turn:t.example:3478"],"username":"u","credential":"c"}]"#
        );
        assert_eq!(
            (
                c.max_message_bytes,
                c.rate_limit_burst,
                c.rate_limit_per_sec
            ),
            (1024, 5, 0.5)
        );
        assert_eq!((c.resume_grace_ms, c.stale_after_ms), (0, 2000));
        assert_eq!(c.room_jurisdiction, Some("eu"));
        assert!(c.join_secrets.0.is_empty());
        let (c, _) = parse(&[("JOIN_SECRET", " new , old ,")]);
        assert_eq!(c.join_secrets.0, ["new", "old"]);
        assert!(
            !format!("{c:?}").contains("new"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn admin_secret_turns_the_api_on_and_an_unusable_one_fails_closed() {
        let (c, w) = parse(&[]);
        assert!(matches!(c.admin, AdminAccess::Off) && w.is_empty());
        let (c, w) = parse(&[("ADMIN_SECRET", " new , old ,")]);
        match &c.admin {
            AdminAccess::On(secrets) => assert_eq!(secrets.0, ["new", "old"]),
            other => panic!("{other:?}"),
        }
        assert!(w.is_empty() && !format!("{c:?}").contains("old"));
        for bad in [",", " , ", ""] {
            let (c, w) = parse(&[("ADMIN_SECRET", bad)]);
            assert!(matches!(c.admin, AdminAccess::Unusable), "{bad:?}");
            assert_eq!(w.len(), 1);
            assert_eq!(
                w[0].to_string(),
                "invalid ADMIN_SECRET: it is set but holds no value (only commas or spaces); \
                 every admin request is refused (503 config-error) until it is fixed"
            );
            // Sockets are not refused for it.
            assert!(!c.refuses_sockets());
        }
    }

    #[test]
    fn invalid_values_fall_back_with_a_warning() {
        let (c, w) = parse(&[
            ("ICE_SERVERS", r#"{"urls":"stun:x"}"#),
            ("MAX_MESSAGE_BYTES", "2000000"),
            ("RATE_LIMIT_BURST", "0"),
            ("RATE_LIMIT_PER_SEC", "NaN"),
            ("RESUME_GRACE_MS", "-1"),
            ("STALE_AFTER_MS", "soon"),
            ("MAX_TICKET_TTL_SECONDS", "1d"),
            ("LOG_LEVEL", "debug"),
        ]);
        let names: Vec<_> = w.iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "ICE_SERVERS",
                "MAX_MESSAGE_BYTES",
                "RATE_LIMIT_BURST",
                "RATE_LIMIT_PER_SEC",
                "RESUME_GRACE_MS",
                "STALE_AFTER_MS",
                "MAX_TICKET_TTL_SECONDS",
                "LOG_LEVEL"
            ]
        );
        let d = Config::default();
        assert_eq!(c.ice_servers.get(), d.ice_servers.get());
        assert_eq!(c.max_message_bytes, d.max_message_bytes);
        assert_eq!(c.rate_limit_burst, d.rate_limit_burst);
        assert_eq!(c.rate_limit_per_sec, d.rate_limit_per_sec);
        assert_eq!(c.resume_grace_ms, d.resume_grace_ms);
        assert_eq!(c.stale_after_ms, d.stale_after_ms);
        assert_eq!(c.max_ticket_ttl_s, 86_400);
        assert_eq!(c.log_level, LogLevel::Info);
        assert!(!c.refuses_sockets());
        assert_eq!(
            w[7].to_string(),
            r#"invalid LOG_LEVEL: "debug" is not info or warn; using the default"#
        );
    }

    #[test]
    fn an_invalid_origin_list_allows_only_the_own_origin() {
        for bad in [
            "https://ok.example, not an origin",
            "*, https://a.example",
            "null",
        ] {
            let (c, w) = parse(&[("ALLOWED_ORIGINS", bad)]);
            assert_eq!(c.allowed_origins, AllowedOrigins::List(vec![]), "{bad}");
            assert!(!c.allowed_origins.allows("https://ok.example"));
            assert!(!c.refuses_sockets());
            assert_eq!((w.len(), w[0].name), (1, "ALLOWED_ORIGINS"));
            assert!(
                w[0].to_string()
                    .ends_with("; only the Worker's own origin may open sockets"),
                "{}",
                w[0]
            );
        }
        // Empty is valid, and as closed.
        let (c, w) = parse(&[("ALLOWED_ORIGINS", " ")]);
        assert_eq!(
            (c.allowed_origins, w.len()),
            (AllowedOrigins::List(vec![]), 0)
        );
    }

    #[test]
    fn a_join_secret_without_a_key_refuses_every_socket() {
        for bad in [",", " , ,", "", "   "] {
            let (c, w) = parse(&[("JOIN_SECRET", bad)]);
            assert!(c.join_secrets.0.is_empty());
            assert_eq!(c.unusable, ["JOIN_SECRET"], "{bad:?}");
            assert!(c.refuses_sockets());
            assert_eq!((w.len(), w[0].name), (1, "JOIN_SECRET"));
            assert_eq!(
                w[0].to_string(),
                "invalid JOIN_SECRET: it is set but holds no key (only commas or spaces); \
                 every socket is refused (503 config-error) until it is fixed"
            );
        }
        let (c, w) = parse(&[("JOIN_SECRET", "new,")]);
        assert_eq!((c.join_secrets.0.len(), w.len()), (1, 0));
        assert!(!c.refuses_sockets());
    }

    #[test]
    fn an_unknown_jurisdiction_refuses_every_socket() {
        let (c, w) = parse(&[("ROOM_JURISDICTION", "moon"), ("JOIN_SECRET", ",")]);
        assert_eq!(c.room_jurisdiction, None);
        assert_eq!(c.unusable, ["ROOM_JURISDICTION", "JOIN_SECRET"]);
        assert!(w[0]
            .to_string()
            .ends_with("every socket is refused (503 config-error) until it is fixed"));
        let (c, w) = parse(&[("ROOM_JURISDICTION", "")]);
        assert_eq!(
            (c.room_jurisdiction, w.len(), c.refuses_sockets()),
            (None, 0, false)
        );
    }

    #[test]
    fn ticket_lifetimes_are_capped() {
        assert_eq!(parse(&[]).0.max_ticket_ttl_s, 86_400);
        for (text, ttl) in [("600", 600), ("1", 1), ("31536000", 31_536_000)] {
            let (c, w) = parse(&[("MAX_TICKET_TTL_SECONDS", text)]);
            assert_eq!((c.max_ticket_ttl_s, w.len()), (ttl, 0), "{text}");
        }
        for bad in ["0", "-1", "31536001", "1e3", "10m", ""] {
            let (c, w) = parse(&[("MAX_TICKET_TTL_SECONDS", bad)]);
            assert_eq!((c.max_ticket_ttl_s, w.len()), (86_400, 1), "{bad}");
        }
    }

    /// The settings that restrict access, with valid values to hold an invalid one against:
    /// for the gates, values from the most closed to the open; for the ticket lifetime cap,
    /// whose invalid values take the default, the default.
    const RESTRICTING: [(&str, &[&str]); 4] = [
        ("ALLOWED_ORIGINS", &["", "https://a.example", "*"]),
        ("JOIN_SECRET", &["k", "k,old"]),
        ("ROOM_JURISDICTION", &["", "eu", "fedramp"]),
        ("MAX_TICKET_TTL_SECONDS", &["86400"]),
    ];

    proptest::proptest! {
        /// Fail closed: no invalid value of a setting that restricts access yields a
        /// configuration more open than leaving it unset or giving it a valid value, whatever
        /// the other settings are.
        #[test]
        fn no_invalid_restricting_value_opens_more_than_a_valid_one(
            setting in 0..RESTRICTING.len(),
            value in proptest::prop_oneof!["[ ,]{0,4}", "[ ,*a-zA-Z0-9:/.-]{0,24}"],
            origins in proptest::option::of(proptest::sample::select(vec!["*", "https://a.example", ""])),
            secret in proptest::option::of(proptest::sample::select(vec!["k", "x,y"])),
        ) {
            let (name, valid) = RESTRICTING[setting];
            let with = |v: Option<&str>| {
                let mut pairs = vec![];
                pairs.extend(origins.map(|o| ("ALLOWED_ORIGINS", o)));
                pairs.extend(secret.map(|k| ("JOIN_SECRET", k)));
                pairs.retain(|(n, _)| *n != name);
                pairs.extend(v.map(|v| (name, v)));
                parse(&pairs)
            };
            let (config, warnings) = with(Some(&value));
            if name == "JOIN_SECRET" {
                // Set, it never leaves the rooms open, warned about or not.
                proptest::prop_assert!(!config.join_secrets.0.is_empty() || config.refuses_sockets());
            }
            if warnings.iter().any(|w| w.name == name) {
                let unset = with(None).0;
                proptest::prop_assert!(config.at_most_as_open(&unset), "{value:?} opens more than unset");
                if fails_closed(name).is_some() {
                    for v in valid {
                        let (other, w) = with(Some(v));
                        proptest::prop_assert!(w.is_empty());
                        proptest::prop_assert!(config.at_most_as_open(&other), "{value:?} opens more than {v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn rates_are_plain_decimals() {
        for (text, rate) in [
            ("20", 20.0),
            ("0.5", 0.5),
            (".25", 0.25),
            ("3.", 3.0),
            ("1000000", 1e6),
        ] {
            assert_eq!(parse_decimal(text), Some(rate), "{text}");
        }
        for bad in [
            "",
            ".",
            "1e3",
            "-1",
            "+2",
            "1.2.3",
            "0x10",
            " 5",
            "NaN",
            "inf",
            "1234567890",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
        let (c, w) = parse(&[("RATE_LIMIT_PER_SEC", "0")]);
        assert_eq!((c.rate_limit_per_sec, w.len()), (20.0, 1));
    }

    #[test]
    fn webhooks_need_a_url_and_a_secret() {
        assert_eq!(parse(&[("WEBHOOK_SECRET", "s")]).0.webhook, None);
        let (c, w) = parse(&[
            ("WEBHOOK_URL", "https://h.example/x"),
            ("WEBHOOK_SECRET", "s"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.webhook.map(|h| h.url),
            Some("https://h.example/x".to_owned())
        );
        for pairs in [
            &[("WEBHOOK_URL", "https://h.example/x")][..],
            &[("WEBHOOK_URL", "h.example"), ("WEBHOOK_SECRET", "s")][..],
        ] {
            let (c, w) = parse(pairs);
            assert_eq!((c.webhook, w.len(), w[0].name), (None, 1, "WEBHOOK_URL"));
        }
    }

    #[test]
    fn ice_servers_need_urls() {
        for bad in [
            "[{}]",
            r#"[{"urls":""}]"#,
            r#"[{"urls":[]}]"#,
            "[1]",
            "nope",
        ] {
            let (_, w) = parse(&[("ICE_SERVERS", bad)]);
            assert_eq!(w.len(), 1, "{bad}");
        }
        let (c, w) = parse(&[("ICE_SERVERS", "[]")]);
        assert!(w.is_empty());
        assert_eq!(c.ice_servers.get(), "[]");
    }
}
