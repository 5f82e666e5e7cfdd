//! The local server's processes, read from /proc: resident memory, open files and CPU time.
//!
//! `wrangler dev` runs a Node process with two `workerd` children: one is the local proxy
//! that listens on the dev port, the other runs the Worker and its Durable Objects. Given the
//! port, the process that listens on it is found through /proc/net/tcp and the socket links
//! in /proc/*/fd; the server is then that process's parent (wrangler's Node, which prints the
//! logs) and every `workerd` under it.

use serde::Serialize;
use std::collections::HashSet;
use std::fs;
use std::net::IpAddr;

/// The processes to sample, each with its role.
#[derive(Debug, Clone, Default)]
pub struct Server {
    pub procs: Vec<(u32, &'static str)>,
}

/// The `workerd` that listens on the port: wrangler's local proxy in front of the runtime.
pub const PROXY: &str = "proxy";
/// The other `workerd`: the Worker and its Durable Objects.
pub const RUNTIME: &str = "runtime";
/// wrangler's Node process, which receives and prints every log line.
pub const WRANGLER: &str = "wrangler";
/// A process given with `--server-pid`.
pub const GIVEN: &str = "server";

/// One process at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct ProcSample {
    pub pid: u32,
    pub role: &'static str,
    /// Its command name (`/proc/{pid}/comm`).
    pub name: String,
    pub rss_kib: u64,
    pub open_files: u64,
    pub cpu_s: f64,
}

/// All the server's processes at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    pub rss_kib: u64,
    pub open_files: u64,
    pub cpu_s: f64,
    pub processes: Vec<ProcSample>,
}

impl Server {
    /// The explicit pids, else the local server on `host:port` if the host is loopback.
    pub fn locate(explicit: &[u32], host: Option<&str>, port: Option<u16>) -> Server {
        if !explicit.is_empty() {
            return Server {
                procs: explicit.iter().map(|&pid| (pid, GIVEN)).collect(),
            };
        }
        let loopback = host.is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match (loopback, port) {
            (true, Some(port)) => Server {
                procs: local_server(port),
            },
            _ => Server::default(),
        }
    }

    pub fn sample(&self) -> Option<Sample> {
        if self.procs.is_empty() {
            return None;
        }
        let mut sample = Sample::default();
        for &(pid, role) in &self.procs {
            let Some(p) = proc_sample(pid, role) else {
                continue;
            };
            sample.rss_kib += p.rss_kib;
            sample.open_files += p.open_files;
            sample.cpu_s += p.cpu_s;
            sample.processes.push(p);
        }
        Some(sample)
    }
}

/// The processes of the `wrangler dev` (or bare `workerd`) listening on `port`.
fn local_server(port: u16) -> Vec<(u32, &'static str)> {
    let Some(listener) = listener_pid(port) else {
        return Vec::new();
    };
    let Some(parent) = read_stat(listener).map(|s| s.ppid) else {
        return vec![(listener, PROXY)];
    };
    // Under wrangler the parent is Node; a bare workerd's parent is a shell or init.
    let root = if comm(parent).as_deref() == Some("node") {
        parent
    } else {
        listener
    };
    let mut procs: Vec<(u32, &'static str)> = descendants(root)
        .into_iter()
        .filter_map(|pid| {
            if pid == listener {
                Some((pid, PROXY))
            } else if comm(pid).as_deref() == Some("workerd") {
                Some((pid, RUNTIME))
            } else if pid == root {
                Some((pid, WRANGLER))
            } else {
                None
            }
        })
        .collect();
    if !procs.iter().any(|p| p.0 == listener) {
        procs.push((listener, PROXY));
    }
    procs.sort_unstable();
    procs
}

fn listener_pid(port: u16) -> Option<u32> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        inodes.extend(text.lines().filter_map(|l| listening_inode(l, port)));
    }
    if inodes.is_empty() {
        return None;
    }
    for pid in all_pids() {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let inode = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            if inode.is_some_and(|i| inodes.contains(&i)) {
                return Some(pid);
            }
        }
    }
    None
}

/// The socket inode of a /proc/net/tcp line that listens on `port`.
fn listening_inode(line: &str, port: u16) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let local = fields.get(1)?;
    let state = fields.get(3)?;
    let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
    if *state != "0A" || local_port != port {
        return None;
    }
    fields.get(9)?.parse().ok()
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, read_stat(pid)?.ppid)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    found
}

fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// The fields of /proc/{pid}/stat this tool uses.
#[derive(Debug, PartialEq)]
struct Stat {
    ppid: u32,
    /// User plus system time, in clock ticks.
    cpu_ticks: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses /proc/{pid}/stat. The command name may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Stat {
        ppid,
        cpu_ticks: utime + stime,
    })
}

/// `VmRSS` of /proc/{pid}/status, in KiB.
fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The machine's 1-, 5- and 15-minute load averages: how busy it was besides this run.
pub fn load_average() -> Option<[f64; 3]> {
    parse_loadavg(&fs::read_to_string("/proc/loadavg").ok()?)
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// CPU seconds this process has used so far (user plus system).
pub fn own_cpu_s() -> f64 {
    read_stat(std::process::id())
        .map(|s| s.cpu_ticks as f64 / clock_ticks_per_s())
        .unwrap_or(0.0)
}

fn proc_sample(pid: u32, role: &'static str) -> Option<ProcSample> {
    let stat = read_stat(pid)?;
    let rss_kib = parse_rss_kib(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)?;
    let open_files = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(ProcSample {
        pid,
        role,
        name: comm(pid).unwrap_or_default(),
        rss_kib,
        open_files,
        cpu_s: stat.cpu_ticks as f64 / clock_ticks_per_s(),
    })
}

/// CPU seconds each server process used between two samples.
#[derive(Debug, Clone, Serialize)]
pub struct ProcCpu {
    pub pid: u32,
    pub role: &'static str,
    pub cpu_s: f64,
}

/// What each server process used from `before` to `after` (none without both samples).
pub fn cpu_between(before: &Option<Sample>, after: &Option<Sample>) -> Vec<ProcCpu> {
    let (Some(before), Some(after)) = (before, after) else {
        return Vec::new();
    };
    after
        .processes
        .iter()
        .map(|p| {
            let was = before
                .processes
                .iter()
                .find(|b| b.pid == p.pid)
                .map_or(0.0, |b| b.cpu_s);
            ProcCpu {
                pid: p.pid,
                role: p.role,
                cpu_s: p.cpu_s - was,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        let listen = "   1: 0100007F:2253 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 49326 1 0000000000000000 100 0 0 10 0";
        let established = "   2: 0100007F:2253 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 51111 1 0000000000000000 20 4 30 10 -1";
        let v6 = "   0: 00000000000000000000000001000000:2253 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0";
        assert_eq!(listening_inode(header, 8787), None);
        assert_eq!(listening_inode(listen, 8787), Some(49326));
        assert_eq!(listening_inode(listen, 8788), None);
        assert_eq!(listening_inode(established, 8787), None);
        assert_eq!(listening_inode(v6, 8787), Some(777));
    }

    #[test]
    fn stat_with_an_awkward_name() {
        let text =
            "4242 (work (er) d) S 4000 4242 4000 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 1 1 1";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                ppid: 4000,
                cpu_ticks: 300
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn rss_from_status() {
        let status = "Name:\tworkerd\nVmPeak:\t  900 kB\nVmRSS:\t   59760 kB\nThreads:\t4\n";
        assert_eq!(parse_rss_kib(status), Some(59_760));
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn load_averages() {
        assert_eq!(
            parse_loadavg("12.65 7.21 4.14 3/912 29502\n"),
            Some([12.65, 7.21, 4.14])
        );
        assert_eq!(parse_loadavg("1.0 x"), None);
    }

    #[test]
    fn remote_urls_have_no_local_server() {
        assert!(Server::locate(&[], Some("duet.example"), Some(443))
            .procs
            .is_empty());
        assert_eq!(
            Server::locate(&[7, 8], Some("duet.example"), None).procs,
            vec![(7, GIVEN), (8, GIVEN)]
        );
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = std::process::id();
        let sample = Server {
            procs: vec![(me, GIVEN)],
        }
        .sample()
        .unwrap();
        assert_eq!(sample.processes.len(), 1);
        assert!(sample.rss_kib > 0);
        assert!(sample.open_files > 0);
        assert!(own_cpu_s() >= 0.0);
    }
}
