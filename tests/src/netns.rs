//! Network namespaces that a test creates for itself: one namespace joined
//! to the root namespace by a veth pair, with faults on the link (netem loss
//! and delay, link down). Removed on drop, even when the test fails.
//!
//! Addresses come from 198.18.0.0/15, the range set aside for network
//! testing (RFC 2544), one /30 per link; names and subnets derive from the
//! process id and a counter, so parallel test processes do not collide.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Run `ip`/`tc` with `args`; the error says what failed and why.
fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program} {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A namespace and the veth pair that links it to the root namespace.
pub struct NetNs {
    pub name: String,
    /// The veth end in the root namespace.
    host_if: String,
    /// The veth end inside the namespace.
    ns_if: String,
    /// Address of the root namespace's end (what the namespace dials).
    pub host_addr: String,
    /// Address of the namespace's end.
    pub ns_addr: String,
}

impl NetNs {
    /// Create a namespace linked to the root namespace, or say why this
    /// machine does not allow it (not root, no CAP_NET_ADMIN, no `ip`).
    pub fn create() -> Result<NetNs, String> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{}{n}", pid % 100_000);
        // /30 subnets in 198.18.0.0/15: 32,768 of them.
        let subnet = (pid.wrapping_mul(31).wrapping_add(n * 7919)) % 32_768;
        let base = (198u32 << 24) | (18 << 16) | (subnet << 2);
        let addr = |host: u32| std::net::Ipv4Addr::from(base + host).to_string();
        let ns = NetNs {
            name: format!("swy-{tag}"),
            host_if: format!("swyh{tag}"),
            ns_if: format!("swyn{tag}"),
            host_addr: addr(1),
            ns_addr: addr(2),
        };
        sh("ip", &["netns", "add", &ns.name])?;
        // From here on, Drop cleans up whatever was made.
        ns.configure()?;
        Ok(ns)
    }

    fn configure(&self) -> Result<(), String> {
        let (ns, host_if, ns_if) = (self.name.as_str(), &self.host_if, &self.ns_if);
        sh(
            "ip",
            &[
                "link", "add", host_if, "type", "veth", "peer", "name", ns_if,
            ],
        )?;
        sh("ip", &["link", "set", ns_if, "netns", ns])?;
        sh(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", self.host_addr),
                "dev",
                host_if,
            ],
        )?;
        sh("ip", &["link", "set", host_if, "up"])?;
        self.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", self.ns_addr),
            "dev",
            ns_if,
        ])?;
        self.exec(&["ip", "link", "set", ns_if, "up"])?;
        self.exec(&["ip", "link", "set", "lo", "up"])
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, command: &[&str]) -> Result<(), String> {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend(command);
        sh("ip", &args)
    }

    /// Put `netem ARGS` on both ends of the link (so both directions
    /// suffer), replacing any earlier fault. `Err` if the kernel has no netem.
    pub fn netem(&self, netem_args: &[&str]) -> Result<(), String> {
        let mut host = vec!["qdisc", "replace", "dev", &self.host_if, "root", "netem"];
        host.extend(netem_args);
        sh("tc", &host)?;
        let mut inside = vec![
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.ns_if,
            "root",
            "netem",
        ];
        inside.extend(netem_args);
        self.exec(&inside)
    }

    /// Remove netem from both ends.
    pub fn clear_netem(&self) {
        let _ = sh("tc", &["qdisc", "del", "dev", &self.host_if, "root"]);
        let _ = self.exec(&["tc", "qdisc", "del", "dev", &self.ns_if, "root"]);
    }

    /// Whether netem works here (kernel module sch_netem): try a no-op delay.
    pub fn netem_available(&self) -> Result<(), String> {
        let probe = self.netem(&["delay", "0ms"]);
        self.clear_netem();
        probe
    }

    /// Take the link down (a partition) or bring it back up.
    pub fn set_link(&self, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        sh("ip", &["link", "set", &self.host_if, state])?;
        self.exec(&["ip", "link", "set", &self.ns_if, state])
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one veth end deletes both; the namespace goes last.
        let _ = sh("ip", &["link", "del", &self.host_if]);
        if let Err(e) = sh("ip", &["netns", "del", &self.name]) {
            eprintln!("could not remove network namespace {}: {e}", self.name);
        }
    }
}
