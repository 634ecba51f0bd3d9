//! Guarding the ways a caller signs in to the web UI (a pasted API token
//! at `POST /login`, the OpenID callback) and recording them:
//!
//! - a token bucket per client address limits sign-in attempts (10 a
//!   minute, bursts of 10), so a token or a provider's callback cannot be
//!   guessed at line speed. The table of addresses is bounded: once full,
//!   addresses it has no room for share one bucket, so an attacker rotating
//!   source addresses cannot grow the hub's memory, only slow down everyone
//!   else who is not yet in the table. (`governor`'s keyed limiter, used
//!   for enrollments in [`crate::limits`], only prunes idle keys on
//!   request; it has no hard size limit, hence this small map.)
//! - every sign-in and sign-out, successful or not, is appended to the
//!   audit log (who, role, how, the client address; for a failure the
//!   reason, never the token). Attempts refused by the limit are not
//!   audited, and refused sign-ins are recorded one by one up to 600 a
//!   minute for the whole hub (the next one recorded counts those that were
//!   not): that bounds how fast anonymous callers can write the audit log,
//!   however many addresses they have.

use crate::roles::Role;
use crate::store::{AuditRecord, Store};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Attempts a client address may make at once.
pub const BURST: u32 = 10;

/// One more attempt is allowed every this long (10 a minute).
pub const REFILL: Duration = Duration::from_secs(6);

/// Most client addresses with their own bucket.
pub const MAX_ADDRESSES: usize = 10_000;

/// Why a sign-in could not be audited.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the audit log: {0}")]
    Store(#[from] crate::store::Error),
    #[error("writing the audit log: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The caller's address as the limiter counts it: an IPv4 address, or the
/// /64 network of an IPv6 one (one host usually owns a whole /64, so
/// counting single IPv6 addresses would let it rotate freely).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    V4([u8; 4]),
    V6Net([u8; 8]),
}

impl Client {
    pub fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.octets()),
                None => {
                    let mut net = [0u8; 8];
                    net.copy_from_slice(&v6.octets()[..8]);
                    Client::V6Net(net)
                }
            },
        }
    }
}

/// One token bucket: `tokens` attempts left as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A bucket's size and how often it gains a token.
#[derive(Debug, Clone, Copy)]
struct Rate {
    burst: u32,
    refill: Duration,
}

/// Sign-in attempts of one client address.
const PER_CLIENT: Rate = Rate {
    burst: BURST,
    refill: REFILL,
};

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rate.burst),
            at: now,
        }
    }

    /// The tokens at `now`, refilled since `at`.
    fn refilled(&self, rate: Rate, now: Instant) -> f64 {
        let gained =
            now.saturating_duration_since(self.at).as_secs_f64() / rate.refill.as_secs_f64();
        (self.tokens + gained).min(f64::from(rate.burst))
    }

    /// Take one token, or say how long until one is available.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let tokens = self.refilled(rate, now);
        if tokens >= 1.0 {
            self.tokens = tokens - 1.0;
            self.at = now;
            Ok(())
        } else {
            let wait = (1.0 - tokens) * rate.refill.as_secs_f64();
            Err(Duration::from_secs_f64(wait))
        }
    }
}

/// The buckets of recent clients (a pure value: the time is passed in).
#[derive(Debug)]
pub struct Buckets {
    by_client: HashMap<Client, Bucket>,
    /// The bucket of clients the table has no room for.
    overflow: Bucket,
    capacity: usize,
}

impl Buckets {
    pub fn new(capacity: usize, now: Instant) -> Buckets {
        Buckets {
            by_client: HashMap::new(),
            overflow: Bucket::full(PER_CLIENT, now),
            capacity,
        }
    }

    /// Count one attempt of `client` at `now`: `Err(wait)` when it must
    /// wait that long first.
    pub fn attempt(&mut self, client: Client, now: Instant) -> Result<(), Duration> {
        if let Some(bucket) = self.by_client.get_mut(&client) {
            return bucket.take(PER_CLIENT, now);
        }
        if self.by_client.len() >= self.capacity {
            // A refilled bucket is the same as none: forget those first.
            self.by_client
                .retain(|_, b| b.refilled(PER_CLIENT, now) < f64::from(BURST));
        }
        if self.by_client.len() >= self.capacity {
            return self.overflow.take(PER_CLIENT, now);
        }
        let mut bucket = Bucket::full(PER_CLIENT, now);
        let taken = bucket.take(PER_CLIENT, now);
        self.by_client.insert(client, bucket);
        taken
    }

    /// Clients with their own bucket.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }
}

/// Refused sign-ins the whole hub writes to the audit log at once, and
/// then one more every this long (600 a minute): however many addresses an
/// attacker has, refusals cannot fill the disk faster than that.
pub const REFUSALS_BURST: u32 = 600;
pub const REFUSALS_REFILL: Duration = Duration::from_millis(100);

const REFUSALS: Rate = Rate {
    burst: REFUSALS_BURST,
    refill: REFUSALS_REFILL,
};

/// The hub-wide budget of audited refusals, and how many went unrecorded
/// since the last one recorded.
#[derive(Debug)]
pub struct RefusalBudget {
    bucket: Bucket,
    unrecorded: u64,
}

impl RefusalBudget {
    pub fn new(now: Instant) -> RefusalBudget {
        RefusalBudget {
            bucket: Bucket::full(REFUSALS, now),
            unrecorded: 0,
        }
    }

    /// Whether one more refusal is recorded at `now`: `Some(n)` with the
    /// `n` refusals left unrecorded before it (then counted again from
    /// zero), `None` when over the budget (counted).
    pub fn record(&mut self, now: Instant) -> Option<u64> {
        match self.bucket.take(REFUSALS, now) {
            Ok(()) => Some(std::mem::take(&mut self.unrecorded)),
            Err(_) => {
                self.unrecorded += 1;
                None
            }
        }
    }
}

/// How a caller signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A pasted API token (`POST /login`).
    Token,
    /// OpenID Connect (`GET /auth/oidc/callback`).
    Oidc,
}

impl Method {
    fn word(self) -> &'static str {
        match self {
            Method::Token => "token",
            Method::Oidc => "oidc",
        }
    }
}

/// What happened, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    SignedIn {
        who: String,
        role: Role,
        method: Method,
    },
    /// A refused sign-in: `reason` must not contain the credential.
    Refused {
        method: Method,
        reason: String,
    },
    SignedOut {
        who: String,
        role: Role,
    },
}

/// Name recorded as the actor of a refused sign-in: nobody is known.
pub const ANONYMOUS: &str = "anonymous";

/// The audit entry of `event`, answered `status` to the request
/// `http_method path` from `remote`.
pub fn audit_record(
    event: &Event,
    http_method: &str,
    path: &str,
    status: u16,
    remote: Option<String>,
    at: u64,
) -> AuditRecord {
    let (actor, role, target, message) = match event {
        Event::SignedIn { who, role, method } => (
            who.clone(),
            *role,
            format!("session {}", method.word()),
            format!("signed in ({})", method.word()),
        ),
        // The lowest role: a refused caller has none, and must not look
        // like one with rights in the log.
        Event::Refused { method, reason } => (
            ANONYMOUS.to_owned(),
            Role::Viewer,
            format!("session {}", method.word()),
            format!("sign-in refused ({}): {reason}", method.word()),
        ),
        Event::SignedOut { who, role } => (
            who.clone(),
            *role,
            "session".to_owned(),
            "signed out".to_owned(),
        ),
    };
    AuditRecord {
        at,
        actor,
        role,
        method: http_method.to_owned(),
        path: path.to_owned(),
        target: Some(target),
        status,
        message: Some(message),
        remote,
    }
}

/// The limiter and the audit log of sign-ins, shared by the web UI's
/// `/login` and `/logout` and the OpenID callback.
pub struct Guard {
    buckets: Mutex<Buckets>,
    refusals: Mutex<RefusalBudget>,
    store: Arc<dyn Store>,
}

impl Guard {
    pub fn new(store: Arc<dyn Store>) -> Guard {
        Guard {
            buckets: Mutex::new(Buckets::new(MAX_ADDRESSES, Instant::now())),
            refusals: Mutex::new(RefusalBudget::new(Instant::now())),
            store,
        }
    }

    /// Count a sign-in attempt from `remote` (none: a caller without an
    /// address, such as an in-process test, counted as one client).
    pub fn admit(&self, remote: Option<IpAddr>) -> Result<(), Duration> {
        let client = Client::of(remote.unwrap_or(IpAddr::V4([0, 0, 0, 0].into())));
        let verdict = self
            .buckets
            .lock()
            .expect("not poisoned")
            .attempt(client, Instant::now());
        if let Err(wait) = verdict {
            // Debug only: a flood of these must not flood the log either.
            tracing::debug!(
                ?remote,
                wait_seconds = wait.as_secs_f64().ceil(),
                "sign-in attempts over the limit; refused"
            );
        }
        verdict
    }

    /// Append the audit entry of `event` (off the async runtime). A
    /// refusal over the hub-wide budget is only counted; the next one
    /// recorded says how many were not.
    pub async fn record(
        &self,
        mut event: Event,
        http_method: &str,
        path: &str,
        status: u16,
        remote: Option<std::net::SocketAddr>,
    ) -> Result<(), Error> {
        if let Event::Refused { reason, .. } = &mut event {
            let verdict = self
                .refusals
                .lock()
                .expect("not poisoned")
                .record(Instant::now());
            match verdict {
                None => return Ok(()),
                Some(0) => {}
                Some(unrecorded) => {
                    tracing::warn!(
                        unrecorded,
                        "refused sign-ins over {REFUSALS_BURST} a minute were not audited one by one"
                    );
                    reason.push_str(&format!(
                        " (and {unrecorded} refused sign-ins before this one not recorded: over {REFUSALS_BURST} a minute)"
                    ));
                }
            }
        }
        let entry = audit_record(
            &event,
            http_method,
            path,
            status,
            remote.map(|r| r.to_string()),
            crate::clock::unix_now(),
        );
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.append_audit(&entry)).await??;
        Ok(())
    }
}

/// Whole seconds to put in `Retry-After` for `wait` (at least 1).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn v4(last: u8) -> Client {
        Client::of(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let start = Instant::now();
        let mut buckets = Buckets::new(100, start);
        for i in 0..BURST {
            assert_eq!(buckets.attempt(v4(1), start), Ok(()), "attempt {i}");
        }
        let wait = buckets.attempt(v4(1), start).unwrap_err();
        assert_eq!(retry_after_seconds(wait), 6);
        // Another address is not blocked.
        assert_eq!(buckets.attempt(v4(2), start), Ok(()));
        // After one refill period one more attempt, not two.
        let later = start + REFILL;
        assert_eq!(buckets.attempt(v4(1), later), Ok(()));
        assert!(buckets.attempt(v4(1), later).is_err());
        // After a minute the whole burst is back.
        let minute = later + Duration::from_secs(60);
        for i in 0..BURST {
            assert_eq!(buckets.attempt(v4(1), minute), Ok(()), "attempt {i}");
        }
        assert!(buckets.attempt(v4(1), minute).is_err());
    }

    #[test]
    fn the_table_is_bounded_and_overflowing_clients_share_one_bucket() {
        let start = Instant::now();
        let mut buckets = Buckets::new(4, start);
        for last in 0..4 {
            assert_eq!(buckets.attempt(v4(last), start), Ok(()));
        }
        // 1,000 more addresses: the table stays at 4, and together they
        // get one burst, not 1,000.
        let admitted = (0..1000u32)
            .filter(|i| {
                let ip = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, *i as u8]);
                buckets.attempt(Client::of(ip), start).is_ok()
            })
            .count();
        assert_eq!(buckets.len(), 4);
        assert_eq!(admitted, BURST as usize);
        // Known clients keep their own buckets meanwhile.
        assert_eq!(buckets.attempt(v4(0), start), Ok(()));
        // Once their buckets refill, they make room for new clients.
        let later = start + REFILL * BURST;
        assert_eq!(buckets.attempt(v4(200), later), Ok(()));
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn refusals_are_recorded_up_to_the_hub_wide_budget_and_the_rest_counted() {
        let start = Instant::now();
        let mut budget = RefusalBudget::new(start);
        for i in 0..REFUSALS_BURST {
            assert_eq!(budget.record(start), Some(0), "refusal {i}");
        }
        for _ in 0..5 {
            assert_eq!(budget.record(start), None);
        }
        // The next one recorded names the five that were not.
        assert_eq!(budget.record(start + REFUSALS_REFILL), Some(5));
        assert_eq!(budget.record(start + REFUSALS_REFILL), None);
        assert_eq!(budget.record(start + REFUSALS_REFILL * 2), Some(1));
    }

    #[test]
    fn ipv6_is_counted_by_its_64_network_and_mapped_ipv4_as_ipv4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Client::of(a.into()), Client::of(b.into()));
        assert_ne!(Client::of(a.into()), Client::of(c.into()));
        let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(Client::of(mapped.into()), v4(7));
    }

    #[test]
    fn a_refused_sign_in_is_audited_as_anonymous_with_its_reason() {
        let refused = Event::Refused {
            method: Method::Token,
            reason: "invalid bearer token".into(),
        };
        let r = audit_record(
            &refused,
            "POST",
            "/login",
            401,
            Some("192.0.2.1:5".into()),
            7,
        );
        assert_eq!(r.actor, ANONYMOUS);
        assert_eq!(r.role, Role::Viewer);
        assert_eq!(r.target.as_deref(), Some("session token"));
        assert_eq!(
            r.message.as_deref(),
            Some("sign-in refused (token): invalid bearer token")
        );
        assert_eq!(r.remote.as_deref(), Some("192.0.2.1:5"));
        let ok = Event::SignedIn {
            who: "alice@example.com".into(),
            role: Role::Operator,
            method: Method::Oidc,
        };
        let r = audit_record(&ok, "GET", "/auth/oidc/callback", 303, None, 7);
        assert_eq!(
            (r.actor.as_str(), r.role),
            ("alice@example.com", Role::Operator)
        );
        assert_eq!(r.target.as_deref(), Some("session oidc"));
    }
}
