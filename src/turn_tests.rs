use super::*;
use crate::vars::vars;

fn settings(pairs: &[(&str, &str)]) -> (TurnSettings, Vec<ConfigWarning>) {
    TurnSettings::from_vars(vars(pairs))
}

#[test]
fn hmac_sha1_known_vectors() {
    // RFC 2202, test case 2.
    assert_eq!(
        rest_credential("Jefe", "what do ya want for nothing?"),
        "7/zfauXrL6LSdBbV8YTfnCWafHk="
    );
    // Computed independently with Python's hmac module.
    assert_eq!(
        rest_credential("duet-test-secret", "1700003600:0123456789abcdef"),
        "JnNF6StTy5wLjPzYAdZ1LRn7n7o="
    );
}

#[test]
fn rest_entry_has_expiry_client_and_credential() {
    let (s, w) = settings(&[
        ("TURN_SECRET", "duet-test-secret"),
        (
            "TURN_URLS",
            "turn:127.0.0.1:3478?transport=udp, turns:t.example:5349",
        ),
    ]);
    assert!(w.is_empty(), "{w:?}");
    let rest = s.rest.expect("rest TURN configured");
    assert_eq!(
        rest.ice_server("0123456789abcdef", 1_700_000_000),
        json!({
            "urls": ["turn:127.0.0.1:3478?transport=udp", "turns:t.example:5349"],
            "username": "1700003600:0123456789abcdef",
            "credential": "JnNF6StTy5wLjPzYAdZ1LRn7n7o=",
        })
    );
}

#[test]
fn tcp_and_tls_transports_reach_the_client_as_written() {
    // A home that drops UDP needs these (docs/deploy.md, "Networks").
    let urls = "turn:t.example:3478?transport=udp, turn:t.example:3478?transport=tcp, turns:t.example:5349?transport=tcp";
    let (s, w) = settings(&[("TURN_SECRET", "k"), ("TURN_URLS", urls)]);
    assert!(w.is_empty(), "{w:?}");
    let entry = s.rest.expect("rest TURN").ice_server("0123456789abcdef", 0);
    assert_eq!(
        entry["urls"],
        json!([
            "turn:t.example:3478?transport=udp",
            "turn:t.example:3478?transport=tcp",
            "turns:t.example:5349?transport=tcp"
        ])
    );
}

#[test]
fn ttl_and_json_urls() {
    let (s, w) = settings(&[
        ("TURN_SECRET", "k"),
        ("TURN_URLS", r#"["turn:a.example:3478"]"#),
        ("TURN_TTL_SECONDS", "600"),
    ]);
    assert!(w.is_empty());
    let entry = s.rest.unwrap().ice_server("c", 1000);
    assert_eq!(entry["username"], "1600:c");
    assert_eq!(entry["urls"], json!(["turn:a.example:3478"]));
}

#[test]
fn half_configured_or_invalid_is_off_with_a_warning() {
    for (pairs, name) in [
        (vec![("TURN_SECRET", "k")], "TURN_URLS"),
        (vec![("TURN_URLS", "turn:a:1")], "TURN_SECRET"),
        (
            vec![("TURN_SECRET", "k"), ("TURN_URLS", "stun:a:1")],
            "TURN_URLS",
        ),
        (vec![("CF_TURN_KEY_ID", "abc")], "CF_TURN_API_TOKEN"),
        (
            vec![("CF_TURN_KEY_ID", "a/b"), ("CF_TURN_API_TOKEN", "t")],
            "CF_TURN_KEY_ID",
        ),
    ] {
        let (s, w) = settings(&pairs);
        assert!(s.rest.is_none() && s.cloudflare.is_none(), "{pairs:?}");
        assert_eq!(w.len(), 1, "{pairs:?}");
        assert_eq!(w[0].name, name);
    }
    let (_, w) = settings(&[("TURN_TTL_SECONDS", "5")]);
    assert_eq!(w[0].name, "TURN_TTL_SECONDS");
}

#[test]
fn the_shortest_ttl_is_ten_seconds() {
    let rest = |ttl: &str| {
        let (s, w) = settings(&[
            ("TURN_SECRET", "k"),
            ("TURN_URLS", "turn:a.example:3478"),
            ("TURN_TTL_SECONDS", ttl),
        ]);
        (s.rest.map(|r| r.expiry_s(0)), w.len())
    };
    assert_eq!(MIN_TTL_SECONDS, 10);
    assert_eq!(rest("10"), (Some(10), 0));
    assert_eq!(rest("9"), (Some(DEFAULT_TTL_SECONDS), 1));
}

#[test]
fn secrets_never_show_in_debug_or_warnings() {
    let (s, w) = settings(&[
        ("TURN_SECRET", "super-secret-1"),
        ("TURN_URLS", "turn:a.example:3478"),
        ("CF_TURN_KEY_ID", "key123"),
        ("CF_TURN_API_TOKEN", "super-secret-2"),
    ]);
    assert!(w.is_empty());
    let debug = format!("{s:?}");
    assert!(!debug.contains("super-secret"), "{debug}");
    assert!(debug.contains("key123"));
    let (_, w) = settings(&[("TURN_SECRET", "super-secret-1")]);
    assert!(!w[0].to_string().contains("super-secret"));
}

#[test]
fn cloudflare_call() {
    let (s, _) = settings(&[
        ("CF_TURN_KEY_ID", "key123"),
        ("CF_TURN_API_TOKEN", "tok"),
        ("TURN_TTL_SECONDS", "7200"),
    ]);
    let call = s.cloudflare.unwrap().call();
    assert_eq!(
        call.url,
        "https://rtc.live.cloudflare.com/v1/turn/keys/key123/credentials/generate-ice-servers"
    );
    assert_eq!(call.authorization, "Bearer tok");
    assert_eq!(call.body, r#"{"ttl":7200}"#);
}

#[test]
fn parses_cloudflare_answers() {
    let body = r#"{"iceServers":[
        {"urls":["stun:stun.cloudflare.com:3478","stun:stun.cloudflare.com:53"]},
        {"urls":["turn:turn.cloudflare.com:3478?transport=udp","turn:turn.cloudflare.com:53?transport=udp","turns:turn.cloudflare.com:443?transport=tcp"],
         "username":"u","credential":"c"}]}"#;
    assert_eq!(
        parse_cloudflare(201, body),
        Ok(vec![
            json!({"urls":["stun:stun.cloudflare.com:3478"]}),
            json!({"urls":["turn:turn.cloudflare.com:3478?transport=udp","turns:turn.cloudflare.com:443?transport=tcp"],"username":"u","credential":"c"}),
        ])
    );
    // The older endpoint answers a single object.
    let single = r#"{"iceServers":{"urls":["turn:t:3478"],"username":"u","credential":"c"}}"#;
    assert_eq!(parse_cloudflare(200, single).map(|s| s.len()), Ok(1));
}

#[test]
fn refuses_bad_cloudflare_answers() {
    assert_eq!(parse_cloudflare(401, "{}"), Err(TurnError::Status(401)));
    assert_eq!(parse_cloudflare(500, ""), Err(TurnError::Status(500)));
    for garbage in [
        "",
        "<html>",
        "{}",
        r#"{"iceServers":7}"#,
        r#"{"iceServers":[]}"#,
        r#"{"iceServers":[{"urls":5}]}"#,
        r#"{"iceServers":[{"urls":["turn:t:3478"]}]}"#,
    ] {
        assert_eq!(
            parse_cloudflare(201, garbage),
            Err(TurnError::Malformed),
            "{garbage}"
        );
    }
}

#[test]
fn cache_lifetime() {
    let entry = Cached::servers(vec![json!({"urls":"turn:x"})], 1_000, 10_000);
    // Reused for half the lifetime, with the expiry of the fetch, not of the reuse.
    assert_eq!(
        entry.fresh(5_999),
        Some(CloudflareIce {
            servers: vec![json!({"urls":"turn:x"})],
            expires_at: Some(11_000),
        })
    );
    assert_eq!(entry.fresh(6_000), None);
    let failed = Cached::failed(1_000);
    assert_eq!(
        failed.fresh(1_000 + FAILURE_BACKOFF_MS - 1),
        Some(CloudflareIce::default())
    );
    assert_eq!(failed.fresh(1_000 + FAILURE_BACKOFF_MS), None);
}

fn base() -> Box<RawValue> {
    RawValue::from_string(r#"[{"urls":"stun:s"}]"#.to_owned()).unwrap()
}

fn rest_settings(ttl: &str) -> TurnSettings {
    settings(&[
        ("TURN_SECRET", "duet-test-secret"),
        ("TURN_URLS", "turn:t.example:3478"),
        ("TURN_TTL_SECONDS", ttl),
    ])
    .0
}

fn cloudflare_ice(expires_at: u64) -> CloudflareIce {
    CloudflareIce {
        servers: vec![json!({"urls":"turn:cf","username":"u","credential":"c"})],
        expires_at: Some(expires_at),
    }
}

#[test]
fn only_ice_servers_never_expire() {
    let none = CloudflareIce::default();
    let ice = ice_servers(&base(), &TurnSettings::default(), &none, "c", 1_000);
    assert_eq!(ice.servers.get(), r#"[{"urls":"stun:s"}]"#);
    assert_eq!(ice.expires_at, None);
}

#[test]
fn minted_credentials_expire_when_their_username_says() {
    let ice = ice_servers(
        &base(),
        &rest_settings("3600"),
        &CloudflareIce::default(),
        "0123456789abcdef",
        1_700_000_000_999,
    );
    assert_eq!(
        ice.servers.get(),
        r#"[{"urls":"stun:s"},{"credential":"JnNF6StTy5wLjPzYAdZ1LRn7n7o=","urls":["turn:t.example:3478"],"username":"1700003600:0123456789abcdef"}]"#
    );
    assert_eq!(ice.expires_at, Some(1_700_003_600_000));
}

#[test]
fn cloudflare_credentials_expire_with_their_fetch() {
    let cf = cloudflare_ice(1_700_007_200_000);
    let ice = ice_servers(
        &base(),
        &TurnSettings::default(),
        &cf,
        "c",
        1_700_000_000_000,
    );
    assert_eq!(
        ice.servers.get(),
        r#"[{"urls":"stun:s"},{"credential":"c","urls":"turn:cf","username":"u"}]"#
    );
    assert_eq!(ice.expires_at, Some(1_700_007_200_000));
    // After a failed call there are no Cloudflare servers, and nothing expires.
    let failed = CloudflareIce::default();
    let ice = ice_servers(&base(), &TurnSettings::default(), &failed, "c", 0);
    assert_eq!(ice.expires_at, None);
}

#[test]
fn with_both_the_earliest_expiry_counts() {
    let now = 1_700_000_000_000;
    let rest = rest_settings("600");
    let later = ice_servers(&base(), &rest, &cloudflare_ice(now + 3_600_000), "c", now);
    assert_eq!(later.expires_at, Some(now + 600_000));
    let sooner = ice_servers(&base(), &rest, &cloudflare_ice(now + 60_000), "c", now);
    assert_eq!(sooner.expires_at, Some(now + 60_000));
}

#[test]
fn merge_appends_to_the_base_list() {
    let base = RawValue::from_string(r#"[{"urls":"stun:s"}]"#.to_owned()).unwrap();
    assert_eq!(merge(&base, vec![]).get(), r#"[{"urls":"stun:s"}]"#);
    assert_eq!(
        merge(
            &base,
            vec![json!({"urls":"turn:t","username":"u","credential":"c"})]
        )
        .get(),
        r#"[{"urls":"stun:s"},{"credential":"c","urls":"turn:t","username":"u"}]"#
    );
}
