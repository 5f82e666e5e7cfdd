//! A soak stopped by a signal stops its `--serve` server too: the run's future is dropped,
//! and with it the server's process group.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
}

/// Whether `done` became true within `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while !done() {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn wait_for(what: &str, limit: Duration, done: impl FnMut() -> bool) {
    assert!(wait_until(limit, done), "timed out waiting for {what}");
}

fn stopped_by(signal: libc::c_int, name: &str) {
    let dir = std::env::temp_dir().join(format!("duet-bench-signal-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("server.pid");
    let port = free_port();
    // A stand-in server: answers 200 to everything (so `/healthz` passes), refuses no
    // connection, and is not a WebSocket server, so the soak just counts failed joins.
    let serve = format!(
        "echo $$ > {pid}; exec node -e \"require('http').createServer((q, s) => s.end('ok')).listen({port}, '127.0.0.1')\"",
        pid = pid_file.display()
    );
    let bench = Command::new(env!("CARGO_BIN_EXE_duet-bench"))
        .args([
            "--url",
            &format!("ws://127.0.0.1:{port}"),
            "--no-progress",
            "soak",
        ])
        .args(["--rooms", "1", "--duration", "60", "--drop-every", "0"])
        .args(["--serve", &serve])
        .arg("--server-log")
        .arg(dir.join("server.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the server's pid", Duration::from_secs(30), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let server: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the server to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // SAFETY: kill(2) on the child's pid; it touches no memory.
    unsafe {
        libc::kill(bench.id() as i32, signal);
    }
    let output = bench.wait_with_output().unwrap();
    if !wait_until(Duration::from_secs(5), || !alive(server)) {
        // Never leave the stand-in behind, even when the test fails.
        // SAFETY: kill(2) on a pid this test's command wrote; it touches no memory.
        unsafe { libc::kill(server, libc::SIGKILL) };
        panic!("the server {server} outlived duet-bench");
    }
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("stopped by {name}")),
        "stderr: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_stops_the_served_server() {
    stopped_by(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_stops_the_served_server() {
    stopped_by(libc::SIGINT, "SIGINT");
}
