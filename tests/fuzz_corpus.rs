//! Replays the committed fuzz corpus through the fuzz targets' bodies, on stable: every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`. The bodies are the very module
//! the libFuzzer binaries run (`fuzz/src/`), so a property that fails under `make fuzz` fails
//! here too once its input is committed. See docs/testing.md, "Fuzzing".

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

/// Every file in the target's directories, each run through `check`. Returns how many.
fn replay(target: &str) -> usize {
    let (_, check) = targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target of that name");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(dir(kind, target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("a corpus entry").path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails its properties", path.display());
            count += 1;
        }
    }
    count
}

/// One regression input, by file name.
fn regression(target: &str, name: &str) {
    let (_, check) = targets::TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .expect("a target of that name");
    check(&std::fs::read(dir("regressions", target).join(name)).expect("the regression input"));
}

#[test]
fn every_target_has_a_corpus() {
    for (target, _) in targets::TARGETS {
        let seeds = std::fs::read_dir(dir("corpus", target)).map_or(0, |d| d.count());
        assert!(seeds > 0, "fuzz/corpus/{target} is empty");
    }
}

#[test]
fn frames_corpus() {
    replay("frames");
}

#[test]
fn close_corpus() {
    replay("close");
}

#[test]
fn admin_corpus() {
    replay("admin");
}

#[test]
fn route_corpus() {
    replay("route");
}

#[test]
fn config_corpus() {
    replay("config");
}

#[test]
fn cloudflare_corpus() {
    replay("cloudflare");
}

#[test]
fn ticket_corpus() {
    replay("ticket");
}

/// `["ping"]` and `["message",5]` were taken for frames: serde's derived structs read arrays.
/// The `crash-` file is the input the fuzzer found (`["leave"]` among other frames).
#[test]
fn regression_an_array_is_not_a_frame() {
    regression("frames", "array-frames");
    regression("frames", "crash-60f764f847430741c6a43246e545c0ffc96ef768");
}

/// `[["stun:x"]]` was taken for a list of ICE servers, for the same reason.
#[test]
fn regression_an_array_is_not_an_ice_server() {
    regression("config", "ice-server-array");
}

/// An `ICE_SERVERS` value serde_json's values cannot hold (a lone surrogate, a number out of
/// range) was accepted, then dropped whole when TURN entries were appended to it.
#[test]
fn regression_ice_servers_survive_turn_entries() {
    regression("config", "ice-servers-lone-surrogate-with-turn");
    regression("config", "ice-servers-huge-number-with-turn");
}

/// The oracle's own mistake: `TURN_TTL_SECONDS=30` is allowed since the minimum went from 60
/// to 10 s for TURN refresh (docs/deploy.md), and the `config` oracle still refused it.
#[test]
fn regression_a_ttl_of_30_seconds_is_allowed() {
    regression("config", "crash-a0f7e5129ba68a7036ca7177cbd70a03727fc814");
}

/// A `meta` number, `2000.4444444464444…`, read back one unit in the last place off after
/// crossing to the room as JSON (serde_json's fast float parser). Documented in access.md; the
/// target allows that one unit. The `crash-` file is the input the fuzzer found.
#[test]
fn regression_meta_numbers_cross_within_one_ulp() {
    regression("ticket", "meta-number-one-ulp");
    regression("ticket", "crash-715dea731de3f3fe57a36442d9fd391a1b9bf2c3");
}

/// Issue 22, settings that restrict access failed open: `JOIN_SECRET` of commas turned tickets
/// off, an invalid `ALLOWED_ORIGINS` allowed every origin, an unknown `ROOM_JURISDICTION`
/// placed rooms anywhere. Each now fails closed (docs/protocol.md, "Configuration").
#[test]
fn regression_restricting_settings_fail_closed() {
    regression("config", "join-secret-commas");
    regression("config", "origins-star-among-others");
    regression("config", "jurisdiction-unknown");
    regression("route", "join-secret-commas");
}

/// Issue 22: a ticket with `exp: 1e300` was accepted, and so was a `crit` header.
#[test]
fn regression_tickets_live_a_bounded_time_and_carry_no_crit() {
    regression("ticket", "signed-exp-1e300");
    regression("ticket", "signed-crit");
}

#[test]
fn documented_http_errors_are_in_the_docs() {
    let docs = include_str!("../docs/protocol.md");
    for (status, code) in targets::route::DOCUMENTED {
        let documented = docs
            .lines()
            .any(|line| line.contains(&status.to_string()) && line.contains(&format!("`{code}`")));
        assert!(documented, "{status} {code} is not in docs/protocol.md");
    }
}
