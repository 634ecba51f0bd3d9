//! Single sign-on against a real OpenID provider (npm oidc-provider, see
//! tests/oidc/provider.mjs): the browser's code flow driven over HTTP with
//! a cookie jar, `switchyard login`'s device flow, and provider JWTs as
//! API bearer tokens. The hub starts before the provider, so every test
//! also covers "provider down at start".

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::oidc_provider::{
    CLI_CLIENT, HUB_CLIENT, HUB_SECRET, TestProvider, issuer, reserve_port,
};
use switchyard_tests::process::{Process, binary, run};

/// A hub configured for the provider on a reserved port, then the
/// provider; returns once the hub has discovered it.
fn setup(dir: &Path) -> (TestHub, TestProvider) {
    let port = reserve_port();
    let secret = dir.join("oidc-secret");
    std::fs::write(&secret, format!("{HUB_SECRET}\n")).unwrap();
    let issuer = issuer(port);
    let secret = secret.display().to_string();
    let hub = TestHub::start(
        dir,
        &[
            "--oidc-issuer",
            &issuer,
            "--oidc-client-id",
            HUB_CLIENT,
            "--oidc-client-secret-file",
            &secret,
            "--oidc-cli-client-id",
            CLI_CLIENT,
            "--oidc-role-map",
            "ops-admins=admin,devs=operator",
        ],
    );
    let provider = TestProvider::start(
        dir,
        port,
        &format!("{}/auth/oidc/callback", hub.admin_url()),
    );
    (hub, provider)
}

/// A browser without JavaScript: no automatic redirects, the provider's
/// cookies kept by name, the hub trusted by its CA.
struct Browser {
    http: reqwest::Client,
    issuer: String,
    cookies: HashMap<String, String>,
    /// The web UI session cookie the hub set, if any.
    hub_session: Option<String>,
}

enum Step {
    Get(String),
    Post(String, Vec<(String, String)>),
}

impl Browser {
    fn new(hub: &TestHub, issuer: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .tls_backend_preconfigured(hub.admin_tls())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            issuer: issuer.to_owned(),
            cookies: HashMap::new(),
            hub_session: None,
        }
    }

    async fn send(&mut self, step: Step) -> (u16, Option<String>, String) {
        let url = match &step {
            Step::Get(u) | Step::Post(u, _) => u.clone(),
        };
        let mut request = match step {
            Step::Get(u) => self.http.get(u),
            Step::Post(u, fields) => {
                let body = fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                self.http
                    .post(u)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
        };
        let to_provider = url.starts_with(&self.issuer);
        if to_provider && !self.cookies.is_empty() {
            let jar = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", jar);
        }
        let response = request.send().await.unwrap();
        if !to_provider {
            for value in response.headers().get_all("set-cookie") {
                let value = value.to_str().unwrap();
                assert!(
                    value.contains("HttpOnly") && value.contains("SameSite=Strict"),
                    "{value}"
                );
                if let Some(session) = value
                    .split(';')
                    .next()
                    .unwrap()
                    .strip_prefix("switchyard_session=")
                {
                    self.hub_session = Some(session.to_owned());
                }
            }
        }
        if to_provider {
            for value in response.headers().get_all("set-cookie") {
                let pair = value.to_str().unwrap().split(';').next().unwrap();
                if let Some((k, v)) = pair.split_once('=') {
                    self.cookies.insert(k.trim().to_owned(), v.to_owned());
                }
            }
        }
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|l| {
            reqwest::Url::parse(&url)
                .unwrap()
                .join(l.to_str().unwrap())
                .unwrap()
                .to_string()
        });
        (status, location, response.text().await.unwrap())
    }

    /// Follow redirects and fill the provider's forms as `user` (any
    /// password; `code` for the device page) until a redirect leaves for a
    /// URL starting with `stop_at` (returned) or a page has no form (its
    /// body is returned). Bounded to 20 steps.
    async fn drive(&mut self, start: &str, user: &str, code: &str, stop_at: &str) -> String {
        let mut step = Step::Get(start.to_owned());
        for _ in 0..20 {
            let (status, location, body) = self.send(step).await;
            if let Some(next) = location {
                if next.starts_with(stop_at) {
                    return next;
                }
                step = Step::Get(next);
                continue;
            }
            assert_eq!(status, 200, "the provider answered {status}: {body}");
            let Some((action, fields)) = form(&body) else {
                return body;
            };
            let fields = fields
                .into_iter()
                .map(|(name, value)| {
                    let value = match name.as_str() {
                        "login" => user.to_owned(),
                        "password" => "any password".to_owned(),
                        "user_code" if value.is_empty() => code.to_owned(),
                        _ => value,
                    };
                    (name, value)
                })
                .collect();
            let action = reqwest::Url::parse(&self.issuer)
                .unwrap()
                .join(&action)
                .unwrap()
                .to_string();
            step = Step::Post(action, fields);
        }
        panic!("the sign-in did not finish within 20 steps");
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Value of attribute `name` in one HTML tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(at) = tag[from..].find(&needle).map(|i| i + from) {
        let before = tag[..at].chars().last();
        if before.is_some_and(char::is_whitespace) {
            let rest = &tag[at + needle.len()..];
            let value = &rest[..rest.find('"')?];
            return Some(value.replace("&amp;", "&").replace("&quot;", "\""));
        }
        from = at + needle.len();
    }
    None
}

/// The first form of a page: its action and its input fields.
fn form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = start + html[start..].find("</form>")?;
    let tag_end = start + html[start..].find('>')?;
    let action = attr(&html[start..tag_end], "action")?;
    let mut fields = Vec::new();
    let mut rest = &html[tag_end..end];
    while let Some(at) = rest.find("<input") {
        let tag_len = rest[at..].find('>').unwrap_or(rest.len() - at);
        let tag = &rest[at..at + tag_len];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[at + tag_len..];
    }
    Some((action, fields))
}

/// `GET /auth/oidc/login` once the hub has discovered the provider (it
/// answers 503 until then): the provider URL it redirects to.
async fn start_login(browser: &mut Browser, hub: &TestHub) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, location, body) = browser
            .send(Step::Get(format!(
                "{}/auth/oidc/login?next=/apps",
                hub.admin_url()
            )))
            .await;
        if status == 303 {
            return location.expect("a redirect names its target");
        }
        assert_eq!(status, 503, "before discovery: {body}");
        assert!(body.contains("not reachable yet"), "{body}");
        assert!(
            Instant::now() < deadline,
            "the hub never discovered the provider"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sign `user` in through the browser flow: the hub's answer to the
/// callback, and the web UI session it started, if any.
async fn browser_sign_in(
    hub: &TestHub,
    provider: &TestProvider,
    user: &str,
) -> (u16, String, Option<String>) {
    let mut browser = Browser::new(hub, &provider.issuer);
    let authorize = start_login(&mut browser, hub).await;
    let callback_prefix = format!("{}/auth/oidc/callback", hub.admin_url());
    let callback = browser.drive(&authorize, user, "", &callback_prefix).await;
    let (status, _, body) = browser.send(Step::Get(callback)).await;
    (status, body, browser.hub_session.clone())
}

/// The status of `GET path` on the hub with the web UI session `session`.
async fn get_with_session(hub: &TestHub, session: &str, path: &str) -> u16 {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(hub.admin_tls())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    http.get(format!("{}{path}", hub.admin_url()))
        .header("cookie", format!("switchyard_session={session}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_code_flow_signs_users_in_by_group_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, provider) = setup(dir.path());

    let mut browser = Browser::new(&hub, &provider.issuer);
    let authorize = start_login(&mut browser, &hub).await;
    let url = reqwest::Url::parse(&authorize).unwrap();
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert!(authorize.starts_with(&format!("{}/auth?", provider.issuer)));
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["client_id"], HUB_CLIENT);
    assert_eq!(query["code_challenge"].len(), 43);
    for field in ["state", "nonce"] {
        assert!(query[field].len() >= 32, "{field}");
    }
    assert!(
        !authorize.contains(HUB_SECRET),
        "the secret never reaches the browser"
    );

    // A tampered state is refused, and gives no session.
    let callback_prefix = format!("{}/auth/oidc/callback", hub.admin_url());
    let callback = browser
        .drive(&authorize, "alice", "", &callback_prefix)
        .await;
    let tampered = callback.replace(&format!("state={}", query["state"]), "state=forged");
    assert_ne!(tampered, callback);
    let (status, _, body) = browser.send(Step::Get(tampered)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("state does not match"), "{body}");
    assert!(!body.contains("Signed in"), "{body}");
    assert!(
        browser.hub_session.is_none(),
        "a tampered state gave a session"
    );

    // A sign-in ends in a web UI session with the mapped role: alice
    // (admin) may read tokens, bob (operator) may read clusters but not
    // tokens.
    let (status, body, alice) = browser_sign_in(&hub, &provider, "alice").await;
    assert_eq!(status, 303, "{body}");
    let alice = alice.expect("a session for alice");
    assert_eq!(get_with_session(&hub, &alice, "/api/v1/tokens").await, 200);
    let (status, body, bob) = browser_sign_in(&hub, &provider, "bob").await;
    assert_eq!(status, 303, "{body}");
    let bob = bob.expect("a session for bob");
    assert_eq!(get_with_session(&hub, &bob, "/api/v1/clusters").await, 200);
    assert_eq!(get_with_session(&hub, &bob, "/api/v1/tokens").await, 403);
    assert_eq!(
        get_with_session(&hub, "forged", "/api/v1/clusters").await,
        401
    );
    // carol is in no group and the map has no `*` rule.
    let (status, body, session) = browser_sign_in(&hub, &provider, "carol").await;
    assert!(session.is_none(), "carol got a session");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("carol is in no group of --oidc-role-map"),
        "{body}"
    );
    assert!(body.contains("href=\"/login\""), "{body}");
    // Each callback is audited: the tampered state and carol as refused
    // (anonymous, with the reason), alice and bob as signed in with OIDC.
    let audit = hub.cli_json(&["audit"]);
    let sign_ins: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == "/auth/oidc/callback")
        .collect();
    let refused = |why: &str| {
        sign_ins.iter().any(|e| {
            e["actor"] == "anonymous"
                && e["target"] == "session oidc"
                && e["message"].as_str().is_some_and(|m| m.contains(why))
                && e["remote"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("127.0.0.1:"))
        })
    };
    assert!(refused("state does not match"), "{audit}");
    assert!(refused("carol is in no group"), "{audit}");
    for (who, role) in [("alice", "admin"), ("bob", "operator")] {
        assert!(
            sign_ins
                .iter()
                .any(|e| e["actor"].as_str().is_some_and(|a| a.contains(who))
                    && e["role"] == role
                    && e["status"] == 303
                    && e["message"] == "signed in (oidc)"),
            "{who}: {audit}"
        );
    }
    assert_eq!(sign_ins.len(), 4, "{audit}");
}

/// `switchyard login` as `user`, completing the provider's device pages
/// over HTTP while the CLI polls; returns the CLI's output.
async fn cli_login(hub: &TestHub, provider: &TestProvider, config: &Path, user: &str) -> String {
    let args = vec![
        "login".to_owned(),
        "--server".into(),
        hub.admin_url(),
        "--server-ca-file".into(),
        hub.ca_file().display().to_string(),
    ];
    let envs = [("SWITCHYARD_CLIENT_CONFIG", config.display().to_string())];
    let mut process = Process::spawn(
        &binary("switchyard"),
        &args,
        &envs,
        &hub.dir.join("logs"),
        &format!("login-{user}"),
    );
    // The hub discovers the provider in the background; login retries are
    // the user's, so wait for the settings route to work first.
    let mut browser = Browser::new(hub, &provider.issuer);
    start_login(&mut browser, hub).await;
    assert!(
        process.wait_for_stdout("enter the code", SOON),
        "login printed no code:\n{}{}",
        process.stdout_text(),
        process.stderr_text()
    );
    let out = process.stdout_text();
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("and enter the code "))
        .expect("the code line")
        .trim()
        .to_owned();
    let page = out
        .lines()
        .find_map(|l| l.strip_prefix("To sign in, open "))
        .expect("the verification URL")
        .trim()
        .to_owned();
    let done = browser.drive(&page, user, &code, "no-stop").await;
    assert!(done.contains("Sign-in Success"), "{done}");
    let status = process
        .wait_exit(Duration::from_secs(30))
        .expect("login finishes once the device is approved");
    let out = process.stdout_text();
    assert!(status.success(), "{out}{}", process.stderr_text());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_login_device_flow_then_commands_use_the_stored_token_with_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, provider) = setup(dir.path());
    let config = dir.path().join("client/config.yaml");

    let out = cli_login(&hub, &provider, &config, "bob").await;
    assert!(out.contains("Signed in to https://127.0.0.1:"), "{out}");
    assert!(out.contains("as oidc:bob"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the config file holds tokens");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("refresh-token:"), "{text}");

    // No SWITCHYARD_TOKEN, no local hub: the stored sign-in.
    let as_stored = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        run(
            &binary("switchyard"),
            &args,
            &[
                ("SWITCHYARD_CLIENT_CONFIG", config.display().to_string()),
                (
                    "SWITCHYARD_DATA_DIR",
                    dir.path().join("nothing").display().to_string(),
                ),
            ],
            SOON,
        )
    };
    let server = hub.admin_url();
    let list = as_stored(&["cluster", "list", "--server", &server]);
    assert!(list.success(), "{}{}", list.stdout, list.stderr);
    // bob is an operator: admin-only commands are refused, and audited.
    let tokens = as_stored(&["token", "list", "--server", &server]);
    assert!(!tokens.success());
    assert!(
        tokens
            .stderr
            .contains("role operator may not list API tokens (HTTP 403)"),
        "{}",
        tokens.stderr
    );
    let add = as_stored(&["cluster", "add", "edge-1", "--server", &server]);
    assert!(add.stderr.contains("HTTP 403"), "{}", add.stderr);
    let audit = hub.cli_ok(&["audit", "-o", "json"]);
    assert!(audit.contains("\"oidc:bob\""), "{audit}");

    // An expired token is refreshed with the refresh token, and saved.
    // The provider rotates refresh tokens: a new one says a refresh happened.
    let refresh_line = |text: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with("refresh-token:"))
            .unwrap()
            .to_owned()
    };
    let before = std::fs::read_to_string(&config).unwrap();
    let expired = before
        .lines()
        .map(|l| match l.split_once("expires-at:") {
            Some((indent, _)) => format!("{indent}expires-at: 1"),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(expired, before);
    std::fs::write(&config, expired).unwrap();
    let list = as_stored(&["cluster", "list", "--server", &server]);
    assert!(list.success(), "{}{}", list.stdout, list.stderr);
    let after = std::fs::read_to_string(&config).unwrap();
    assert!(!after.contains("expires-at: 1\n"), "{after}");
    assert_ne!(refresh_line(&after), refresh_line(&before), "{after}");

    let out = as_stored(&["logout", "--server", &server]);
    assert!(out.success(), "{}", out.stderr);
    let after = as_stored(&["cluster", "list", "--server", &server]);
    assert!(!after.success());
    assert!(
        after.stderr.contains("switchyard login --server"),
        "{}",
        after.stderr
    );
}

/// An RS256 token signed with the PKCS#8 key in `file`.
fn sign(file: &Path, claims: &serde_json::Value) -> String {
    let der = std::fs::read(file).unwrap();
    let key = RsaKeyPair::from_pkcs8(&der).unwrap();
    let header = serde_json::json!({"alg": "RS256", "kid": "test-signing", "typ": "JWT"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_jwts_are_bearer_tokens_and_forged_or_expired_ones_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, provider) = setup(dir.path());
    let mut browser = Browser::new(&hub, &provider.issuer);
    start_login(&mut browser, &hub).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |exp: u64| {
        serde_json::json!({
            "iss": provider.issuer, "aud": CLI_CLIENT, "sub": "alice",
            "preferred_username": "alice", "groups": ["ops-admins"],
            "iat": now, "exp": exp,
        })
    };
    let signing = provider.key_dir.join("signing.der");
    let good = sign(&signing, &claims(now + 300));
    let out = hub.cli_as(&good, &["token", "list"]);
    assert!(
        out.success(),
        "a token of the provider's key works: {}",
        out.stderr
    );

    let expired = sign(&signing, &claims(now - 600));
    let out = hub.cli_as(&expired, &["cluster", "list"]);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    assert!(
        out.stderr.contains("OpenID token refused: expired at"),
        "{}",
        out.stderr
    );

    let forged = sign(&provider.key_dir.join("rogue.der"), &claims(now + 300));
    let out = hub.cli_as(&forged, &["cluster", "list"]);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the signature does not match the provider's key"),
        "{}",
        out.stderr
    );
}
