//! `switchyard serve`: configuration, start-up and the two listeners.

use crate::fleet::{Fleet, FleetSettings};
use crate::gitops::GitOps;
use crate::paths::{self, Endpoints};
use crate::store::SledStore;
use anyhow::{Context, bail};
use rand::Rng;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchyard_certs::ServerCertificate;
use tracing::{info, warn};

/// Validated settings of a hub.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub quic_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// Names (DNS or IP) agents use to reach the hub; the first one goes into
    /// join commands.
    pub public_names: Vec<String>,
    pub cert_ttl: Duration,
    pub heartbeat: Duration,
    /// Serve the admin API over plain HTTP; only allowed on loopback.
    pub http_insecure: bool,
    /// What one agent connection or source IP may cost the hub.
    pub limits: crate::limits::Limits,
    /// What one Git fetch may bring.
    pub fetch_limits: crate::git::FetchLimits,
    /// Sign-in with an OpenID provider (`--oidc-*`), if configured.
    pub oidc: crate::oidc::Options,
}

impl ServeConfig {
    /// Check the configuration before anything is bound or written.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.cert_ttl < Duration::from_secs(3) {
            bail!("--cert-ttl must be at least 3s, got {:?}", self.cert_ttl);
        }
        if self.heartbeat < Duration::from_secs(1) {
            bail!("--heartbeat must be at least 1s, got {:?}", self.heartbeat);
        }
        self.limits.validate()?;
        self.oidc.validate()?;
        for (flag, value) in [
            ("--git-max-pack-bytes", self.fetch_limits.max_pack_bytes),
            ("--git-max-objects", self.fetch_limits.max_objects),
            ("--git-max-object-bytes", self.fetch_limits.max_object_bytes),
        ] {
            if value == 0 {
                bail!("{flag} must be at least 1");
            }
        }
        if self.fetch_limits.stall_timeout < Duration::from_secs(1) {
            bail!(
                "--git-stall-timeout must be at least 1s, got {:?}",
                self.fetch_limits.stall_timeout
            );
        }
        for name in &self.public_names {
            if name.is_empty() || name.contains(['/', ':', ' ']) && name.parse::<IpAddr>().is_err()
            {
                bail!("--public-name {name:?} is not a host name or IP address");
            }
        }
        if self.http_insecure && !self.http_listen.ip().is_loopback() {
            bail!(
                "--http-insecure serves the admin API without TLS, which is only allowed on a \
                 loopback address, and {} is not one; drop --http-insecure to serve HTTPS with \
                 the hub's certificate",
                self.http_listen
            );
        }
        Ok(())
    }

    /// Names for the hub's server certificate: the public names, the
    /// addresses the hub listens on, and the loopback names, so agents and
    /// admin clients verify whichever of them they dial.
    pub fn certificate_names(&self) -> Vec<String> {
        let mut names = self.public_names.clone();
        let listening = [self.quic_listen.ip(), self.http_listen.ip()]
            .into_iter()
            .filter(|ip| !ip.is_unspecified())
            .map(|ip| ip.to_string());
        let local = ["localhost", "127.0.0.1", "::1"].map(str::to_owned);
        for name in listening.chain(local) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

fn format_host_port(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn load_or_create_admin_token(data_dir: &std::path::Path) -> anyhow::Result<String> {
    load_or_create_token(&paths::admin_token_file(data_dir), "sya_")
}

/// A random secret kept in `path` (0600) with a recognisable prefix.
fn load_or_create_token(path: &std::path::Path, prefix: &str) -> anyhow::Result<String> {
    let path = path.to_owned();
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        Ok(_) => bail!(
            "{} is empty; delete it and the hub writes a new secret there",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            let token = format!("{prefix}{}", hex::encode(secret));
            switchyard_certs::write_private_file(&path, format!("{token}\n").as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            info!(path = %path.display(), "secret written");
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A started hub: both listeners bound, not yet serving.
pub struct Hub {
    pub fleet: Arc<Fleet>,
    pub gitops: Arc<GitOps>,
    pub endpoints: Endpoints,
    endpoint: quinn::Endpoint,
    http: tokio::net::TcpListener,
    /// TLS for the admin API; none with `--http-insecure`.
    admin_tls: Option<Arc<rustls::ServerConfig>>,
    certificate: Arc<ServerCertificate>,
    certificate_names: Vec<String>,
    ca_dir: PathBuf,
    store: Arc<dyn crate::store::Store>,
    admin_token: String,
    data_dir: std::path::PathBuf,
    limits: crate::limits::Limits,
    /// The OpenID provider, when `--oidc-issuer` is set.
    oidc: Option<Arc<crate::oidc::Provider>>,
    /// Where an OpenID sign-in ends (the web UI's sessions).
    session_sink: Option<Arc<dyn crate::oidc::SessionSink>>,
}

/// Where an OpenID sign-in in the browser ends: a web UI session for the
/// signed-in caller, then the page the sign-in started from.
struct WebSessionSink(Arc<crate::sessions::Sessions>);

impl crate::oidc::SessionSink for WebSessionSink {
    fn start(&self, principal: crate::auth::Principal, next: &str) -> axum::response::Response {
        let secure = self.0.secure();
        self.0.signed_in_response(principal, next, secure)
    }
}

/// How often the hub checks whether its server certificate needs renewing
/// (it is reissued once less than a third of its 90 days is left).
const CERTIFICATE_CHECK: Duration = Duration::from_secs(3600);

impl Hub {
    /// Open the store and the CA, bind both listeners and write the discovery file.
    pub async fn start(config: ServeConfig) -> anyhow::Result<Hub> {
        config.validate()?;
        // Files named by --oidc-* are read before anything is bound; the
        // provider itself is contacted in the background (it may be down).
        let oidc = match config.oidc.load()? {
            Some(settings) => {
                let provider = crate::oidc::Provider::new(settings)?;
                provider.start();
                Some(provider)
            }
            None => None,
        };
        let data_dir = &config.data_dir;
        create_private_dir(data_dir)?;
        make_data_dir_private(data_dir)?;
        let ca = switchyard_certs::CertificateAuthority::load_or_create(&paths::ca_dir(data_dir))
            .context("loading the hub certificate authority")?;
        let certificate_names = config.certificate_names();
        let identity = ca
            .load_or_issue_server_identity(&paths::ca_dir(data_dir), &certificate_names)
            .context("issuing the hub's server certificate")?;
        let certificate =
            ServerCertificate::new(&identity).context("loading the hub's server certificate")?;
        let tls = switchyard_certs::hub_server_config(&ca, certificate.clone())
            .context("building the hub's TLS configuration")?;
        let admin_tls = if config.http_insecure {
            None
        } else {
            Some(Arc::new(
                switchyard_certs::admin_server_config(certificate.clone())
                    .context("building the admin API's TLS configuration")?,
            ))
        };
        let quic_tls = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .context("the hub's TLS configuration is not usable for QUIC")?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_tls));
        server_config.transport_config(Arc::new(config.limits.transport()));
        let store = SledStore::open(&paths::store_dir(data_dir)).with_context(|| {
            format!(
                "opening the store in {} (is another hub running on this data dir?)",
                paths::store_dir(data_dir).display()
            )
        })?;
        // sled creates its files with the process's umask; the walk above
        // found none on a first start.
        switchyard_certs::make_private(&paths::store_dir(data_dir), true).with_context(|| {
            format!(
                "making the store {} private",
                paths::store_dir(data_dir).display()
            )
        })?;
        let admin_token = load_or_create_admin_token(data_dir)?;

        let socket = std::net::UdpSocket::bind(config.quic_listen)
            .with_context(|| format!("binding QUIC (UDP) on {}", config.quic_listen))?;
        enlarge_receive_buffer(&socket);
        let reset_key = load_or_create_secret(&paths::reset_key_file(data_dir))?;
        // A stateless-reset key that survives restarts: after a crash, the
        // new process can tell agents that their old connection is gone, so
        // they reconnect at once instead of waiting for their idle timeout.
        // Connection IDs carry a tag keyed with it too, or the new process
        // would drop the agents' packets as invalid before it can answer
        // them with a reset (see `connection_ids`).
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &reset_key,
        )));
        // quinn sends at most one stateless reset per 20 ms by default, and
        // drops every packet that arrives sooner: after a restart, 10,000
        // agents would need minutes to learn that their connections are gone
        // (keep-alives arrive in bursts, so even 100 µs lost a third of them).
        // A reset is always smaller than the packet that caused it (no
        // amplification) and the keyed CID check below drops garbage before
        // it gets here, so there is no limit.
        endpoint_config.min_reset_interval(Duration::ZERO);
        let cid_secret = reset_key.clone();
        endpoint_config.cid_generator(move || {
            Box::new(crate::connection_ids::ConnectionIds::new(&cid_secret))
        });
        // Keeps the socket drained while thousands of handshakes wait to
        // run (see the crate's docs).
        let runtime = switchyard_quic::DrainingRuntime::new();
        let endpoint = quinn::Endpoint::new(endpoint_config, Some(server_config), socket, runtime)
            .context("starting the QUIC endpoint")?;
        let http = tokio::net::TcpListener::bind(config.http_listen)
            .await
            .with_context(|| format!("binding the admin API (TCP) on {}", config.http_listen))?;
        let quic_addr = endpoint.local_addr().context("QUIC local address")?;
        let http_addr = http.local_addr().context("HTTP local address")?;

        let agent_host = config.public_names.first().cloned().unwrap_or_else(|| {
            if quic_addr.ip().is_unspecified() || quic_addr.ip().is_loopback() {
                "127.0.0.1".to_owned()
            } else {
                quic_addr.ip().to_string()
            }
        });
        let agent_address = format_host_port(&agent_host, quic_addr.port());
        let admin_host = if http_addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            http_addr.ip().to_string()
        };
        let endpoints = Endpoints {
            admin_url: format!(
                "{}://{}",
                if config.http_insecure {
                    "http"
                } else {
                    "https"
                },
                format_host_port(&admin_host, http_addr.port())
            ),
            agent_address: agent_address.clone(),
            ca_sha256: ca.fingerprint(),
            pid: std::process::id(),
        };
        let store: Arc<dyn crate::store::Store> = Arc::new(store);
        // Forges sign webhooks with this unless a repo names its own secret.
        load_or_create_token(&paths::webhook_secret_file(data_dir), "syw_")?;
        let fleet = Arc::new(
            Fleet::new(
                store.clone(),
                ca,
                FleetSettings {
                    agent_address,
                    cert_ttl: config.cert_ttl,
                    heartbeat: config.heartbeat,
                },
            )
            .with_notifier(Arc::new(crate::agents::QuicNotifier::new())),
        );
        // Both were done above, before anything could be served.
        fleet.readiness().store_opened();
        fleet.readiness().quic_bound();
        let gitops = Arc::new(
            GitOps::new(
                store.clone(),
                fleet.clone(),
                paths::repos_dir(data_dir),
                paths::webhook_secret_file(data_dir),
            )
            .with_fetch_limits(config.fetch_limits)
            .with_renders(
                config.limits.render,
                crate::render::sandbox::Worker::this_binary(),
            ),
        );
        // 0600 from creation, like everything else in the data dir.
        switchyard_certs::write_private_file(
            &paths::endpoint_file(data_dir),
            &serde_json::to_vec_pretty(&endpoints).expect("endpoints serialize"),
        )
        .context("writing hub.json")?;
        info!(
            quic = %quic_addr,
            admin = %endpoints.admin_url,
            agents_dial = %endpoints.agent_address,
            ca_sha256 = %endpoints.ca_sha256,
            data_dir = %data_dir.display(),
            "hub listening"
        );
        Ok(Hub {
            fleet,
            gitops,
            endpoints,
            endpoint,
            http,
            admin_tls,
            certificate,
            certificate_names,
            ca_dir: paths::ca_dir(data_dir),
            store,
            admin_token,
            data_dir: data_dir.clone(),
            limits: config.limits,
            oidc,
            session_sink: None,
        })
    }

    /// End OpenID sign-ins in `sink` (the web UI's sessions).
    pub fn with_session_sink(mut self, sink: Arc<dyn crate::oidc::SessionSink>) -> Self {
        self.session_sink = Some(sink);
        self
    }

    /// Serve agents and the admin API until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let agents = tokio::spawn(crate::agents::serve(
            self.endpoint.clone(),
            self.fleet.clone(),
            Arc::new(crate::limits::Guard::new(self.limits.clone())),
            stopped(stop_rx.clone()),
        ));
        self.gitops.start().context("starting repo pollers")?;
        let first_plan = tokio::spawn(first_plan(self.gitops.clone(), self.fleet.clone()));
        // One authenticator and one set of web sessions for the API and the
        // web UI: a session's calls to the API act as its signed-in caller,
        // and an OpenID sign-in in the browser ends in such a session.
        let verifier = self
            .oidc
            .clone()
            .map(|p| p as Arc<dyn crate::auth::BearerVerifier>);
        let auth = Arc::new(
            crate::auth::Authenticator::new(self.store.clone(), &self.admin_token)
                .with_verifier(verifier),
        );
        let sessions = Arc::new(crate::sessions::Sessions::new(
            auth,
            self.admin_tls.is_some(),
        ));
        let sign_in = Arc::new(crate::sign_in::Guard::new(self.store.clone()));
        let web = crate::web::router(crate::web::WebState {
            fleet: self.fleet.clone(),
            gitops: self.gitops.clone(),
            store: self.store.clone(),
            sessions: sessions.clone(),
            sign_in: sign_in.clone(),
            oidc: self.oidc.is_some(),
            stopping: stop_rx.clone(),
            heat_map: Default::default(),
        });
        let mut app = web
            .merge(crate::api::router_with_sessions(
                self.fleet.clone(),
                self.gitops.clone(),
                self.store.clone(),
                sessions.clone(),
            ))
            .layer(axum::Extension(crate::api::DataDir(self.data_dir.clone())));
        if let Some(provider) = &self.oidc {
            // Unauthenticated by nature: they are how a caller gets a role.
            let sink: Arc<dyn crate::oidc::SessionSink> = match &self.session_sink {
                Some(sink) => sink.clone(),
                None => Arc::new(WebSessionSink(sessions)),
            };
            app = app.merge(crate::oidc::router(
                provider.clone(),
                sink,
                sign_in,
                self.admin_tls.is_some(),
            ));
        }
        // Connect info gives the audit log each request's remote address.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let http = match self.admin_tls {
            Some(tls) => {
                let listener = crate::https::TlsListener::new(self.http, tls)
                    .context("starting the admin API's TLS listener")?;
                // axum provides the remote address for wrapped listeners (tap_io),
                // not for foreign ones; the tap itself does nothing.
                let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
                tokio::spawn(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped(stop_rx.clone()))
                        .into_future(),
                )
            }
            None => tokio::spawn(
                axum::serve(self.http, app)
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .into_future(),
            ),
        };
        let renewal = tokio::spawn(renew_certificate(
            self.fleet.clone(),
            self.certificate.clone(),
            self.ca_dir.clone(),
            self.certificate_names.clone(),
            stopped(stop_rx),
        ));
        shutdown.await;
        info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = agents.await;
        let _ = renewal.await;
        first_plan.abort();
        self.endpoint.wait_idle().await;
        match tokio::time::timeout(Duration::from_secs(5), http).await {
            Ok(Ok(result)) => result.context("admin API server")?,
            Ok(Err(join)) => return Err(join).context("admin API task"),
            Err(_) => warn!("admin API did not stop within 5s"),
        }
        Ok(())
    }
}

/// Plan once at start so assignments match the store before `/readyz`
/// says ready; retried until it succeeds (a store error may be passing).
async fn first_plan(gitops: Arc<GitOps>, fleet: Arc<Fleet>) {
    loop {
        match gitops.reconcile("startup").await {
            Ok(()) => {
                fleet.readiness().first_plan_done();
                info!("first planning pass done; ready");
                return;
            }
            Err(e) => {
                warn!(error = %switchyard_common::error_chain(&e), "first planning pass failed; retrying in 5s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Reissue the server certificate when it nears expiry and present the new
/// one on both listeners from the next handshake on, without a restart.
async fn renew_certificate(
    fleet: Arc<Fleet>,
    certificate: Arc<ServerCertificate>,
    ca_dir: PathBuf,
    names: Vec<String>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(CERTIFICATE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        match fleet.ca().load_or_issue_server_identity(&ca_dir, &names) {
            Ok(identity) if identity.chain[0] != certificate.leaf() => {
                match certificate.replace(&identity) {
                    Ok(()) => info!("hub server certificate renewed"),
                    Err(e) => {
                        warn!(error = %switchyard_common::error_chain(&e), "renewed server certificate not usable")
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %switchyard_common::error_chain(&e), "renewing the hub server certificate failed")
            }
        }
    }
}

/// Ask for a 32 MiB UDP receive buffer: when thousands of agents reconnect
/// at once, the default (about 200 KiB) overflows and their handshake
/// packets are dropped, which QUIC retries only after growing timeouts
/// (8 MiB still dropped 5,000 datagrams in a 3,000-agent storm). The
/// kernel caps it at `net.core.rmem_max`; the size obtained is logged, with
/// a warning below 4 MiB.
fn enlarge_receive_buffer(socket: &std::net::UdpSocket) {
    const WANTED: usize = 32 << 20;
    const ENOUGH: usize = 4 << 20;
    let state = match quinn::udp::UdpSocketState::new(socket.into()) {
        Ok(state) => state,
        Err(error) => {
            warn!(%error, "cannot inspect the QUIC socket");
            return;
        }
    };
    let _ = state.set_recv_buffer_size(socket.into(), WANTED);
    match state.recv_buffer_size(socket.into()) {
        Ok(size) if size < ENOUGH => warn!(
            bytes = size,
            "small UDP receive buffer; raise net.core.rmem_max for large fleets (docs/SCALING.md)"
        ),
        Ok(size) => info!(bytes = size, "UDP receive buffer"),
        Err(error) => warn!(%error, "cannot read the UDP receive buffer size"),
    }
}

/// 32 random bytes kept in `path` (0600), created on first use.
fn load_or_create_secret(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(secret) if secret.len() == 32 => Ok(secret),
        Ok(_) => bail!(
            "{} is not a 32-byte key; delete it to create a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = vec![0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            switchyard_certs::write_private_file(path, &secret)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Hold the data dir to private modes at every start, not only when it is
/// created: one made by an operator, an older hub or a copy may be readable
/// by others, and it holds the CA key, tokens and (in the store) bundles
/// with Secrets. Everything but the Git clones is walked (they are many
/// files, and the private directory above them already closes them).
fn make_data_dir_private(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let refuse = |e: std::io::Error| {
        anyhow::anyhow!(
            "{e}; the data dir {} holds the CA key and the hub's secrets, so it must be private \
             to the hub's user (chown it to that user, or start the hub as its owner)",
            data_dir.display()
        )
    };
    let mut made = switchyard_certs::make_private(data_dir, false).map_err(refuse)?;
    let repos = paths::repos_dir(data_dir);
    let entries = std::fs::read_dir(data_dir)
        .with_context(|| format!("reading data dir {}", data_dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading data dir {}", data_dir.display()))?
            .path();
        let walked = switchyard_certs::make_private(&path, path != repos).map_err(refuse)?;
        made.changed.extend(walked.changed);
    }
    for path in &made.changed {
        warn!(path = %path.display(), "was readable by others; made private to the hub's user");
    }
    if let Some((dir, mode)) = made.top_not_ours {
        warn!(dir = %dir.display(), mode = %format!("{mode:o}"), "the data dir belongs to another user and keeps its mode; everything in it is private");
    }
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))
}
