//! The web UI end to end: a real hub, real agents, and Debian's Chromium
//! driven through chromedriver (WebDriver) — signing in, agents connecting
//! live, a commit reaching a cluster without a reload, approving a manual
//! app, rolling back with a button, a viewer without buttons whose forged
//! request is refused, CSRF attempts refused — and plain HTTP checks of the
//! cookie flags, CSRF and page sizes. On failure a screenshot of the page is
//! saved under target/web-ui-screenshots/.

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_tests::cluster::OneCluster;
use switchyard_tests::fleet::{SOON, TestAgent, TestHub};
use switchyard_tests::git_server::free_port;

/// The hub's built-in admin token.
fn admin_token(hub: &TestHub) -> String {
    std::fs::read_to_string(hub.data_dir().join("admin-token"))
        .expect("admin-token")
        .trim()
        .to_owned()
}

fn http_client(hub: &TestHub) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(hub.admin_tls())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

/// An HTML form's body.
fn form(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `name=value` of a `Set-Cookie` answer, and the whole header.
fn set_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_owned();
    (header.split(';').next().unwrap().to_owned(), header)
}

/// The CSRF token a page carries for its script.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf-token\" content=\"")
        .expect("csrf meta");
    let rest = &page[at + "name=\"csrf-token\" content=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The HTML of `path`, signed in with `cookie`.
async fn page_text(client: &reqwest::Client, base: &str, path: &str, cookie: &str) -> String {
    client
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `POST /logout` with `cookie` and the page's `csrf` token.
async fn sign_out(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    csrf: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/logout"))
        .header("cookie", cookie)
        .header("content-type", FORM)
        .body(form(&[("csrf", csrf)]))
        .send()
        .await
        .unwrap()
}

#[test]
fn http_sign_in_sets_a_strict_cookie_and_mutations_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    hub.add_cluster("edge", &["env=prod"]);
    let base = hub.admin_url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = http_client(&hub);
        // Every page needs a session.
        let r = client
            .get(format!("{base}/clusters?q=ed"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/login?next=/clusters%3Fq%3Ded");
        // A wrong token signs nobody in.
        let r = client
            .post(format!("{base}/login"))
            .header("content-type", FORM)
            .body(form(&[("token", "syt_wrong"), ("next", "/")]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("set-cookie").is_none());
        // The admin token does; `next` may not leave the hub.
        let r = client
            .post(format!("{base}/login"))
            .header("content-type", FORM)
            .body(form(&[
                ("token", admin_token(&hub).as_str()),
                ("next", "//evil.example/x"),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/");
        let (cookie, header) = set_cookie(&r);
        for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(header.contains(flag), "{flag}: {header}");
        }
        // Pages: CSP without inline script, no caching, under 300 KB.
        let mut csrf = String::new();
        for path in [
            "/",
            "/clusters",
            "/clusters/edge",
            "/apps",
            "/repos",
            "/audit",
            "/tokens",
        ] {
            let r = client
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let csp = r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
                "{csp}"
            );
            assert_eq!(r.headers()["cache-control"], "no-store");
            let body = r.text().await.unwrap();
            assert!(body.len() < 300 * 1024, "{path}: {} bytes", body.len());
            assert!(!body.contains("<script>"), "{path} has an inline script");
            csrf = csrf_of(&body);
        }
        // Assets are embedded and cached for long.
        let r = client
            .get(format!("{base}/assets/app.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        // A mutation with the cookie alone (what a forged cross-site form
        // would send) is refused, and so is one from a foreign Origin.
        let label = json!({"set": {"tier": "web"}});
        let url = format!("{base}/api/v1/clusters/edge/labels");
        for (token, origin) in [
            (None, None),
            (Some("forged"), None),
            (Some(csrf.as_str()), Some("https://evil.example")),
        ] {
            let mut request = client.patch(&url).header("cookie", &cookie).json(&label);
            if let Some(token) = token {
                request = request.header("x-csrf-token", token);
            }
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 403, "{token:?} {origin:?}");
        }
        assert_eq!(hub.cluster("edge")["labels"], json!({"env": "prod"}));
        let r = client
            .patch(&url)
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("origin", &base)
            .json(&label)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(hub.cluster("edge")["labels"]["tier"], "web");
        // The audit log names the refusals.
        let audit = hub.cli_json(&["audit"]);
        let refused = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == 403 && e["path"] == "/api/v1/clusters/edge/labels")
            .count();
        assert_eq!(refused, 3, "{audit}");
        // Sign out: the cookie no longer works.
        let r = sign_out(&client, &base, &cookie, &csrf).await;
        assert_eq!(r.status(), 303);
        let r = client
            .get(format!("{base}/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
    });
}

/// chromedriver on a loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver)");
        let up = switchyard_tests::process::wait_until(SOON, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "chromedriver did not listen on {port}");
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium with a fresh profile that reaches nothing but
/// loopback, and the hub it browses.
struct Browser {
    client: Client,
    base: String,
    _profile: tempfile::TempDir,
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/web-ui-screenshots")
}

impl Browser {
    async fn open(driver: &Driver, base: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    // The hub's certificate is signed by its own CA.
                    "--ignore-certificate-errors",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session with Chromium");
        Browser {
            client,
            base: base.to_owned(),
            _profile: profile,
        }
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// Save a screenshot, then fail with `why`.
    async fn fail(&self, name: &str, why: &str) -> ! {
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
        let page = self.client.source().await.unwrap_or_default();
        panic!("{why} (screenshot: target/web-ui-screenshots/{name}.png)\npage:\n{page}");
    }

    /// Save a screenshot for the docs.
    async fn keep(&self, file: &str) {
        if std::env::var_os("SWITCHYARD_WEB_SCREENSHOTS").is_some() {
            let png = self.client.screenshot().await.unwrap();
            let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/images");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(file), png).unwrap();
        }
    }

    /// Run `script` in the page and return its value.
    async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Wait (bounded) until `script` returns true, else fail with a screenshot.
    async fn wait_for(&self, name: &str, what: &str, script: &str) {
        let deadline = Instant::now() + SOON;
        while Instant::now() < deadline {
            if self.client.execute(script, vec![]).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.fail(name, what).await
    }

    async fn sign_in(&self, token: &str, next: &str) {
        self.goto(&format!("/login?next={next}")).await;
        let field = self.client.find(Locator::Id("token")).await.unwrap();
        field.send_keys(token).await.unwrap();
        self.client
            .find(Locator::Css("form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let next = next.to_owned();
        self.wait_for(
            "sign-in",
            "signing in did not land on the page asked for",
            &format!("return location.pathname === {next:?} && !!document.querySelector('meta[name=csrf-token]');"),
        )
        .await;
    }

    /// Click the action button whose text is `label` (in the row of
    /// `row_selector`, if given) and accept its confirmation dialog.
    async fn act(&self, name: &str, label: &str) {
        let buttons = self
            .client
            .find_all(Locator::Css("button.action"))
            .await
            .unwrap();
        for button in buttons {
            if button.text().await.unwrap().trim() == label {
                button.click().await.unwrap();
                self.confirm_dialog(name).await;
                self.client
                    .find(Locator::Css("dialog[open] button[value=yes]"))
                    .await
                    .unwrap()
                    .click()
                    .await
                    .unwrap();
                return;
            }
        }
        self.fail(name, &format!("no button {label:?}")).await
    }

    /// Wait (bounded) for the confirmation dialog to be open, with the
    /// focus inside it.
    async fn confirm_dialog(&self, name: &str) {
        self.wait_for(
            name,
            "no confirmation dialog took the focus",
            "const d = document.querySelector('dialog[open]'); return !!d && d.contains(document.activeElement);",
        )
        .await;
    }

    /// Press and release `key` on whatever has the focus, as a keyboard
    /// would (not sent to a chosen element).
    async fn press(&self, key: Key) {
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: key.into() })
            .then(KeyAction::Up { value: key.into() });
        self.client.perform_actions(keys).await.unwrap();
    }

    /// Type `text` into whatever has the focus, key by key.
    async fn type_keys(&self, text: &str) {
        let mut keys = KeyActions::new("keyboard".to_owned());
        for c in text.chars() {
            keys = keys
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(keys).await.unwrap();
    }

    /// What has the focus: tag, id, class, href, text.
    async fn focused(&self) -> Value {
        self.eval(
            "const e = document.activeElement;
             return e ? {tag: e.tagName.toLowerCase(), id: e.id, class: e.className,
                         href: e.getAttribute('href'), text: (e.textContent || '').trim()} : null;",
        )
        .await
    }

    /// Press Tab (at most `most` times) until the focused element matches
    /// the JavaScript condition `on` (about `e`, the focused element); its
    /// description. Fails with a screenshot when Tab never reaches it.
    async fn tab_to(&self, name: &str, on: &str, most: usize) -> Value {
        let script = format!("const e = document.activeElement; return !!e && ({on});");
        for _ in 0..most {
            self.press(Key::Tab).await;
            if self.eval(&script).await == Value::Bool(true) {
                return self.focused().await;
            }
        }
        let last = self.focused().await;
        self.fail(
            name,
            &format!("{most} Tabs did not reach `{on}`; last focus: {last}"),
        )
        .await
    }

    /// Sets a marker on the page; [`Browser::not_reloaded`] checks it is
    /// still there (a reload or navigation would have dropped it).
    async fn mark(&self) {
        self.eval("window.__notReloaded = true; return true;").await;
    }

    async fn not_reloaded(&self, name: &str) {
        if self.eval("return window.__notReloaded === true;").await != Value::Bool(true) {
            self.fail(name, "the page reloaded; it should have updated in place")
                .await;
        }
    }

    /// `fetch` from the page with its cookie; the HTTP status.
    async fn fetch_status(&self, method: &str, path: &str, csrf: Option<&str>) -> u64 {
        let headers = match csrf {
            Some(token) => json!({"Content-Type": "application/json", "X-CSRF-Token": token}),
            None => json!({"Content-Type": "application/json"}),
        };
        let script = format!(
            "const done = arguments[arguments.length - 1];
             fetch({path:?}, {{method: {method:?}, headers: {headers}, body: '{{}}', credentials: 'same-origin'}})
               .then(r => done(r.status), e => done(-1));"
        );
        self.client
            .execute_async(&script, vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0)
    }
}

#[test]
fn the_browser_signs_in_watches_the_fleet_live_and_acts_by_role() {
    let dir = tempfile::tempdir().unwrap();
    let one = OneCluster::start_web(dir.path());
    one.create_web(&["--manual"]);
    let hub = &one.hub;
    let base = hub.admin_url();
    let admin = admin_token(hub);
    let viewer = hub.cli_json(&["token", "create", "watcher", "--role", "viewer"])["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = switchyard_tests::process::wait_until(SOON, || {
        hub.cli_json(&["app", "show", "web"])["pending"].is_string()
    });
    assert!(waiting, "the manual app has no commit waiting");
    let first = hub.cli_json(&["app", "show", "web"])["pending"]
        .as_str()
        .map(str::to_owned);
    // A second cluster, registered and enrolled but not yet connected.
    let late_dir = dir.path().join("late-agent");
    std::fs::create_dir_all(&late_dir).unwrap();
    let mut late = TestAgent::new(&late_dir, "late");
    let joined = late.join(&hub.add_cluster("late", &["env=staging"]));
    assert!(joined.success(), "join late: {}", joined.stderr);

    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let b = Browser::open(&driver, &base).await;
        // Sign in and come back to the page asked for.
        b.sign_in(&admin, "/clusters").await;
        b.wait_for("clusters", "cluster edge is not shown connected",
            "const c = document.querySelector('tr[data-cluster=edge] .conn'); return !!c && c.textContent.trim() === 'connected';").await;
        b.wait_for("live", "the event stream did not open",
            "return document.getElementById('live').textContent === 'live';").await;
        b.mark().await;
        // See an agent connect, live.
        late.start();
        b.wait_for("agent-connects", "cluster late did not turn connected without a reload",
            "const c = document.querySelector('tr[data-cluster=late] .conn'); return !!c && c.textContent.trim() === 'connected';").await;
        b.not_reloaded("agent-connects").await;
        b.keep("web-ui-clusters.png").await;

        // Approve the manual app with its button.
        b.goto("/apps/web").await;
        b.act("approve", "Approve and sync").await;
        b.wait_for("approve", "the approved commit did not reach cluster edge",
            "const r = document.querySelector('tr[data-app=web][data-cluster=edge] .sync'); return !!r && r.textContent.trim() === 'Synced';").await;

        // Watch a new commit reach the cluster without a reload.
        b.goto("/apps/web").await;
        b.mark().await;
        one.source.write("web/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n");
        let second = one.commit("add extra");
        let ok = tokio::task::block_in_place(|| switchyard_tests::process::wait_until(SOON, || hub.cli_json(&["app", "show", "web"])["pending"] == second.as_str()));
        assert!(ok, "the hub did not see the second commit");
        hub.cli_ok(&["app", "sync", "web"]);
        b.wait_for("live-commit", "the new commit did not show on cluster edge live",
            &format!("const r = document.querySelector('tr[data-app=web][data-cluster=edge] .applied code'); return !!r && r.title === {second:?};")).await;
        b.not_reloaded("live-commit").await;
        b.keep("web-ui-app.png").await;

        // Pin it where it is with a button: a rollback to the deployed commit.
        b.goto("/apps/web").await;
        // Timestamps read relative, with the absolute time on hover.
        b.wait_for("times", "a history timestamp is not shown relative with its absolute time as title",
            "const t = document.querySelector('#history time[datetime]'); return !!t && / ago$/.test(t.textContent) && t.title === t.getAttribute('datetime') && t.title.endsWith('Z');").await;
        b.act("pin", "Pin at the deployed commit").await;
        let pinned = tokio::task::block_in_place(|| switchyard_tests::process::wait_until(SOON, || hub.cli_json(&["app", "show", "web"])["pinned"] == true));
        assert!(pinned, "the pin button did not pin app web");
        assert_eq!(hub.cli_json(&["app", "show", "web"])["deployed"], second.as_str());

        // Roll back with the history table's button.
        b.goto("/apps/web").await;
        b.act("rollback", "Roll back to this").await;
        let first = first.unwrap();
        b.wait_for("rollback", "the rollback did not reach the page",
            &format!("const d = document.querySelector('#deployed code'); return !!d && d.title === {first:?};")).await;
        assert_eq!(hub.cli_json(&["app", "show", "web"])["deployed"], first.as_str());
        assert_eq!(hub.cli_json(&["app", "show", "web"])["pinned"], true);

        // A CSRF attempt with the admin's own cookie: no token, or a wrong one.
        assert_eq!(b.fetch_status("POST", "/api/v1/apps/web/sync", None).await, 403);
        assert_eq!(b.fetch_status("POST", "/api/v1/apps/web/sync", Some("wrong")).await, 403);
        // Refresh a repo: the fetch is requested, and audited.
        b.goto("/repos").await;
        b.act("refresh", "Refresh").await;
        b.wait_for("refresh", "refreshing the repo was not confirmed",
            "return document.getElementById('flash').textContent.startsWith('Done');").await;
        b.goto("/").await;
        b.keep("web-ui-fleet.png").await;

        // Sign out; a viewer sees no action controls, and a forged request
        // with the viewer's own session and CSRF token is refused.
        b.client.find(Locator::Css("header form button")).await.unwrap().click().await.unwrap();
        b.wait_for("logout", "signing out did not reach /login", "return location.pathname === '/login';").await;
        b.sign_in(&viewer, "/apps/web").await;
        let controls = b.eval("return document.querySelectorAll('button.action, form.api-form').length;").await;
        if controls != json!(0) {
            b.fail("viewer", &format!("a viewer sees {controls} action controls")).await;
        }
        let csrf = b.eval("return document.querySelector('meta[name=csrf-token]').content;").await;
        let status = b.fetch_status("POST", "/api/v1/apps/web/sync", csrf.as_str()).await;
        assert_eq!(status, 403, "a viewer's sync was not refused");
        b.goto("/audit").await;
        let denied = b.eval("return document.querySelector('main h1').textContent;").await;
        assert_eq!(denied, json!("Error"), "a viewer reached the audit log");
        b.client.clone().close().await.unwrap();
    });
    // The viewer's refused sync is audited under its name, the admin's
    // refresh under the admin's.
    let audit = one.hub.cli_json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "admin"
                && e["path"] == "/api/v1/repos/fleet/refresh"
                && e["status"] == 202),
        "{audit}"
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "watcher" && e["status"] == 403),
        "{audit}"
    );
}

/// The sync actions (POST /api/v1/apps/web/sync) the audit log holds.
fn audited_syncs(hub: &TestHub) -> usize {
    hub.cli_json(&["audit"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == "/api/v1/apps/web/sync" && e["method"] == "POST")
        .count()
}

/// Keyboard alone: Tab reaches the skip link first, Enter on it moves the
/// focus to the content, Tab reaches an app's link and Enter follows it,
/// Tab reaches the Sync button, Enter opens a confirmation dialog that has
/// the focus, Escape cancels it (nothing is synced, the focus is back on the
/// button), and Tab then Enter on the dialog's confirm button syncs; a
/// cluster's labels change the same way through their form. Every focused
/// control shows a focus outline.
#[test]
fn the_keyboard_alone_reaches_every_control_and_confirms_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let one = OneCluster::start_web(dir.path());
    one.create_web(&[]);
    let hub = &one.hub;
    let shown = switchyard_tests::process::wait_until(SOON, || {
        hub.cli_json(&["app", "show", "web"])["deployed"].is_string()
    });
    assert!(shown, "app web was not deployed");
    let admin = admin_token(hub);
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let b = Browser::open(&driver, &hub.admin_url()).await;
        b.sign_in(&admin, "/").await;
        // The overview lists app web once its cluster reports (live updates
        // fill a page loaded earlier only partly, so reload until it shows).
        let deadline = Instant::now() + SOON;
        loop {
            b.goto("/").await;
            if b.eval("return !!document.querySelector('main a[href=\"/apps/web\"]');").await == Value::Bool(true) {
                break;
            }
            if Instant::now() > deadline {
                b.fail("kbd-overview", "the overview never linked app web").await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The first Tab lands on the skip link, and it is visible then.
        b.press(Key::Tab).await;
        let first = b.focused().await;
        if first["text"] != "Skip to content" || first["href"] != "#main" {
            b.fail("kbd-skip", &format!("the first Tab focused {first}, not the skip link")).await;
        }
        let seen = b.eval("const r = document.activeElement.getBoundingClientRect(); return r.left >= 0 && r.top >= 0 && r.width > 0;").await;
        if seen != Value::Bool(true) {
            b.fail("kbd-skip", "the focused skip link is off screen").await;
        }
        b.press(Key::Enter).await;
        let main = b.focused().await;
        if main["tag"] != "main" {
            b.fail("kbd-skip", &format!("Enter on the skip link focused {main}, not <main>")).await;
        }
        // From the content, Tab reaches the app's link (not the navigation
        // first: the skip link jumped over it) and Enter follows it.
        let link = b.tab_to("kbd-app-link", "e.getAttribute('href') === '/apps/web'", 60).await;
        assert_eq!(link["tag"], "a", "{link}");
        let outline = b.eval("return getComputedStyle(document.activeElement).outlineStyle;").await;
        if outline != "solid" {
            b.fail("kbd-focus-style", &format!("a focused link has outline {outline}, not a visible one")).await;
        }
        b.press(Key::Enter).await;
        b.wait_for("kbd-app-page", "Enter on the app link did not open the app page",
            "return location.pathname === '/apps/web' && document.readyState === 'complete';").await;
        // Tab to the Sync button; Enter opens the dialog, focused on Cancel.
        let on_sync = "e.tagName === 'BUTTON' && e.textContent.trim() === 'Sync'";
        b.tab_to("kbd-sync", on_sync, 60).await;
        let outline = b.eval("return getComputedStyle(document.activeElement).outlineStyle;").await;
        if outline != "solid" {
            b.fail("kbd-focus-style", &format!("the focused Sync button has outline {outline}")).await;
        }
        let before = tokio::task::block_in_place(|| audited_syncs(hub));
        b.press(Key::Enter).await;
        b.confirm_dialog("kbd-dialog").await;
        let in_dialog = b.focused().await;
        assert_eq!(in_dialog["text"], "Cancel", "the dialog should focus the harmless choice");
        // Escape cancels: no dialog, the focus back on Sync, nothing synced.
        b.press(Key::Escape).await;
        b.wait_for("kbd-escape", "Escape did not close the dialog and give the focus back to Sync",
            &format!("const e = document.activeElement; return !document.querySelector('dialog') && !!e && ({on_sync});")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_escape = tokio::task::block_in_place(|| audited_syncs(hub));
        assert_eq!(after_escape, before, "Escape on the dialog still synced");
        // Enter again, Tab to the confirm button, Enter: the sync is sent.
        b.press(Key::Enter).await;
        b.confirm_dialog("kbd-dialog").await;
        b.press(Key::Tab).await;
        let yes = b.focused().await;
        if yes["text"] != "Sync" || yes["tag"] != "button" {
            b.fail("kbd-confirm", &format!("Tab in the dialog focused {yes}, not its Sync button")).await;
        }
        b.press(Key::Enter).await;
        b.wait_for("kbd-confirm", "the keyboard sync was not confirmed on the page",
            "return document.getElementById('flash').textContent.startsWith('Done');").await;
        // A form by keyboard too: Tab to the cluster's label field, type,
        // Enter submits, the dialog confirms with Tab and Enter.
        b.goto("/clusters/edge").await;
        b.tab_to("kbd-labels", "e.tagName === 'INPUT' && e.name === 'set'", 60).await;
        b.type_keys("tier=web").await;
        b.press(Key::Enter).await;
        b.confirm_dialog("kbd-labels").await;
        b.press(Key::Tab).await;
        let yes = b.focused().await;
        if yes["text"] != "Apply labels" {
            b.fail("kbd-labels", &format!("Tab in the dialog focused {yes}, not Apply labels")).await;
        }
        b.press(Key::Enter).await;
        b.wait_for("kbd-labels", "the keyboard label change was not confirmed on the page",
            "return document.getElementById('flash').textContent.startsWith('Done');").await;
        b.client.clone().close().await.unwrap();
    });
    assert_eq!(hub.cluster("edge")["labels"]["tier"], "web");
    let synced = switchyard_tests::process::wait_until(SOON, || audited_syncs(hub) == 1);
    assert!(
        synced,
        "the audit log has no single sync by keyboard: {}",
        hub.cli_json(&["audit"])
    );
    let audit = hub.cli_json(&["audit"]);
    let sync = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/api/v1/apps/web/sync")
        .unwrap();
    assert_eq!(sync["actor"], "admin", "{sync}");
    assert!(
        sync["status"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s)),
        "{sync}"
    );
}

/// A client bound to the loopback source address `from`.
fn http_client_from(hub: &TestHub, from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(hub.admin_tls())
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(from))
        .build()
        .unwrap()
}

/// Sign-ins by token are limited per client address (a burst of 10, then
/// 429 with Retry-After and a page saying so), another address is not
/// blocked, and every sign-in and sign-out, good or bad, is in the audit log
/// with its address but without the token.
#[test]
fn token_sign_ins_are_rate_limited_per_address_and_audited_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let base = hub.admin_url();
    let admin = admin_token(&hub);
    let guess = "syt_guessing-attacker-0123456789abcdef";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sign_in = |client: reqwest::Client, token: String| {
        let url = format!("{base}/login");
        async move {
            client
                .post(url)
                .header("content-type", FORM)
                .body(form(&[("token", token.as_str()), ("next", "/")]))
                .send()
                .await
                .unwrap()
        }
    };
    rt.block_on(async {
        let attacker = http_client_from(&hub, [127, 0, 0, 2]);
        let mut statuses = Vec::new();
        for _ in 0..12 {
            let r = sign_in(attacker.clone(), guess.to_owned()).await;
            statuses.push(r.status().as_u16());
            if r.status() == 429 {
                let wait: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=6).contains(&wait), "Retry-After {wait}");
                let page = r.text().await.unwrap();
                assert!(page.contains("Too many sign-in attempts"), "{page}");
                assert!(!page.contains(guess), "{page}");
            }
        }
        assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
        assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
        // Even the right token waits when it comes from that address.
        let r = sign_in(attacker.clone(), admin.clone()).await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().get("set-cookie").is_none());
        // Another address is not blocked: it signs in, and out.
        let user = http_client_from(&hub, [127, 0, 0, 3]);
        let r = sign_in(user.clone(), admin.clone()).await;
        assert_eq!(r.status(), 303);
        let (cookie, _) = set_cookie(&r);
        let page = page_text(&user, &base, "/", &cookie).await;
        // The audit page shows the sign-ins too.
        let audit_page = page_text(&user, &base, "/audit", &cookie).await;
        for shown in [
            "sign-in refused (token): invalid bearer token",
            "signed in (token)",
            "127.0.0.2:",
        ] {
            assert!(audit_page.contains(shown), "{shown}: {audit_page}");
        }
        assert!(!audit_page.contains(guess));
        let r = sign_out(&user, &base, &cookie, &csrf_of(&page)).await;
        assert_eq!(r.status(), 303);
    });
    let audit = hub.cli_json(&["audit"]);
    let text = audit.to_string();
    assert!(
        !text.contains(guess),
        "a guessed token is in the audit log: {text}"
    );
    assert!(
        !text.contains(&admin),
        "the admin token is in the audit log"
    );
    let entries = audit.as_array().unwrap();
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e["path"] == "/login" && e["status"] == 401)
        .collect();
    // Ten refusals, not twelve: attempts over the limit write nothing.
    assert_eq!(refused.len(), 10, "{audit}");
    for e in &refused {
        assert_eq!(e["actor"], "anonymous", "{e}");
        assert_eq!(e["target"], "session token", "{e}");
        assert_eq!(
            e["message"], "sign-in refused (token): invalid bearer token",
            "{e}"
        );
        assert!(
            e["remote"].as_str().unwrap().starts_with("127.0.0.2:"),
            "{e}"
        );
    }
    let signed_in = entries
        .iter()
        .filter(|e| e["path"] == "/login" && e["status"] == 303)
        .collect::<Vec<_>>();
    assert_eq!(signed_in.len(), 1, "{audit}");
    assert_eq!(signed_in[0]["actor"], "admin");
    assert_eq!(signed_in[0]["role"], "admin");
    assert_eq!(signed_in[0]["message"], "signed in (token)");
    assert!(
        signed_in[0]["remote"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.3:")
    );
    assert!(
        entries.iter().any(|e| e["path"] == "/logout"
            && e["actor"] == "admin"
            && e["message"] == "signed out"),
        "{audit}"
    );
}
