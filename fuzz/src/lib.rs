//! The bodies of Duet's fuzz targets. Each `check` takes the fuzzer's bytes, feeds them to one
//! parser of untrusted input through the crate's public API, and asserts properties of the
//! answer against an oracle written from the docs: a panic is a finding.
//!
//! One module, two users: the libFuzzer binaries in `fuzz/fuzz_targets/` (nightly, `make
//! fuzz`) and the corpus replay `tests/fuzz_corpus.rs` (stable, `make test`), which includes
//! this file with `#[path]`. So nothing here may depend on libFuzzer.
//!
//! Inputs are text wherever the parser reads text, so the committed corpus stays readable:
//! fields are lines, and a client frame sequence is separated by ASCII RS (0x1e). The format of
//! each target is in its module's doc comment and in docs/testing.md.

pub mod admin;
pub mod close;
pub mod cloudflare;
pub mod config;
pub mod frames;
pub mod json;
pub mod route;
pub mod ticket;

/// A target: the name of its binary and corpus directory, and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 7] = [
    ("frames", frames::check),
    ("close", close::check),
    ("route", route::check),
    ("config", config::check),
    ("cloudflare", cloudflare::check),
    ("ticket", ticket::check),
    ("admin", admin::check),
];

/// The input's lines, `None` past its end; a line of exactly `~` is `None` too (an absent
/// header or variable), so the fuzzer can leave out any field.
pub(crate) fn fields(data: &[u8], count: usize) -> Vec<Option<String>> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    (0..count)
        .map(|_| lines.next().filter(|l| *l != "~").map(str::to_owned))
        .collect()
}
