//! A local server that `duet-bench` starts, kills and starts again itself (`--serve`), as a
//! deploy does: the command runs in a process group of its own, so one SIGKILL of the group
//! stops `wrangler dev` together with its `workerd` children, and the next start finds the same
//! `--persist-to` storage. The command's output is appended to `--server-log`.

use crate::server::Server;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How often a starting server is asked for `/healthz`.
const POLL: Duration = Duration::from_millis(100);

/// The flags of a scenario that can run its own server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Shell command that serves the Worker in the foreground on --url's port (e.g.
    /// `wrangler dev --port 8801 --persist-to DIR`): duet-bench starts it before the run,
    /// kills it for --restart-every, and stops it at the end. Without it, --url must already
    /// be served.
    #[arg(long)]
    pub serve: Option<String>,
    /// File the --serve command's output is appended to (scanned afterwards for
    /// `internal-error` events and panics).
    #[arg(long, default_value = "duet-bench-server.log")]
    pub server_log: PathBuf,
    /// Seconds a (re)start of the --serve command may take to answer `/healthz`.
    #[arg(long, default_value_t = 120.0)]
    pub start_timeout: f64,
}

/// The server a scenario measures: one it started itself (`--serve`), or the one already at
/// `--url`.
pub struct Served {
    pub local: Option<LocalServer>,
    /// How long the first start took.
    pub first_start: Option<Duration>,
    host: String,
    port: u16,
}

impl Served {
    /// Starts the `--serve` command if there is one (`chatty`: says so, as `{scenario}: …`).
    pub async fn start(
        base: &url::Url,
        args: &ServeArgs,
        scenario: &str,
        chatty: bool,
    ) -> Result<Served> {
        let host = base.host_str().unwrap_or("127.0.0.1").to_owned();
        let port = base.port_or_known_default().unwrap_or(80);
        let mut local = args
            .serve
            .as_ref()
            .map(|cmd| LocalServer::new(cmd, &args.server_log, &host, port));
        let mut first_start = None;
        if let Some(server) = local.as_mut() {
            let took = server.start(args.start_limit()).await?;
            if chatty {
                eprintln!("{scenario}: server up in {:.1} s", took.as_secs_f64());
            }
            first_start = Some(took);
        }
        Ok(Served {
            local,
            first_start,
            host,
            port,
        })
    }

    /// The processes to sample: the started server's, else `given` (the `--url` server's).
    pub fn processes(&self, given: &Server) -> Server {
        match self.local {
            Some(_) => Server::locate(&[], Some(&self.host), Some(self.port)),
            None => given.clone(),
        }
    }

    /// Stops the started server, if any.
    pub async fn stop(&mut self) {
        if let Some(server) = self.local.as_mut() {
            server.stop(Duration::from_secs(5)).await;
        }
    }
}

impl ServeArgs {
    pub fn start_limit(&self) -> Duration {
        Duration::from_secs_f64(self.start_timeout)
    }
}

pub struct LocalServer {
    command: String,
    log: PathBuf,
    /// Where `/healthz` is answered.
    addr: String,
    child: Option<Child>,
}

impl LocalServer {
    pub fn new(command: &str, log: &Path, host: &str, port: u16) -> LocalServer {
        LocalServer {
            command: command.to_owned(),
            log: log.to_owned(),
            addr: format!("{host}:{port}"),
            child: None,
        }
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Starts the command and waits until `/healthz` answers 200; returns how long that took.
    /// Fails if the command exits first or `limit` passes.
    pub async fn start(&mut self, limit: Duration) -> Result<Duration> {
        let started = Instant::now();
        // The previous instance's port must be free, or the new one fails to listen.
        while TcpStream::connect(&self.addr).await.is_ok() {
            if started.elapsed() > limit {
                bail!("{} is still taken before the server starts", self.addr);
            }
            tokio::time::sleep(POLL).await;
        }
        let log = self.open_log()?;
        let err = log.try_clone().context("the server log")?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {:?}", self.command))?;
        self.child = Some(child);
        loop {
            if healthy(&self.addr).await {
                return Ok(started.elapsed());
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    bail!(
                        "the server exited ({status}) before answering; see {}",
                        self.log.display()
                    );
                }
            }
            if started.elapsed() > limit {
                self.kill();
                bail!(
                    "no /healthz from {} after {limit:?}; see {}",
                    self.addr,
                    self.log.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn open_log(&self) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))
    }

    /// SIGKILL to the whole process group, as a crash or a deploy ends the server: no chance
    /// to close a socket or flush anything.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after `grace` if anything is left.
    pub async fn stop(&mut self, grace: Duration) {
        self.signal(libc::SIGTERM);
        let until = Instant::now() + grace;
        while Instant::now() < until && self.group_alive() {
            tokio::time::sleep(POLL).await;
        }
        self.kill();
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) with a negative pid signals the group the child leads (it was
                // started with process_group(0)); it touches no memory.
                unsafe {
                    libc::kill(-pgid, signal);
                }
            }
        }
    }

    fn group_alive(&self) -> bool {
        let Some(child) = &self.child else {
            return false;
        };
        let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the group exists.
        unsafe { libc::kill(-pgid, 0) == 0 }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // Never leave a server behind, whatever way the run ends.
        self.kill();
    }
}

/// Whether `GET /healthz` answers 200 within 5 seconds (a restarted server that thousands
/// of sockets are reconnecting to answers slowly).
async fn healthy(addr: &str) -> bool {
    let ask = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(status_is_ok(&head))
    };
    tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Whether an HTTP/1.x status line starts with status 200.
fn status_is_ok(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/1.") && head.get(8..12) == Some(b" 200".as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert!(status_is_ok(b"HTTP/1.1 200"));
        assert!(status_is_ok(b"HTTP/1.0 200"));
        assert!(!status_is_ok(b"HTTP/1.1 503"));
        assert!(!status_is_ok(b"HTTP/1.1 20"));
        assert!(!status_is_ok(b"SSH-2.0-Open"));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_killed_with_its_children() {
        let dir = std::env::temp_dir().join(format!("duet-bench-ls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("server.log");
        let pid_file = dir.join("child.pid");
        // A shell that starts a child and waits: both must die with the group. Port 9 is
        // discard, which nobody serves here.
        let command = format!(
            "sleep 600 & echo $! > {}; echo started; wait",
            pid_file.display()
        );
        let mut server = LocalServer::new(&command, &log, "127.0.0.1", 9);
        let started = server.start(Duration::from_millis(500)).await;
        assert!(started.is_err());
        let child: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild dies with the group (then init reaps it); SIGKILL is delivered
        // asynchronously, so wait for that state, within a bound.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .map(|s| !s.contains(") Z"))
                .unwrap_or(false)
        };
        let until = Instant::now() + Duration::from_secs(5);
        while alive() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!alive(), "the server's child {child} survived the kill");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "started\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
