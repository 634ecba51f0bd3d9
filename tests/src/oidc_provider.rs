//! A real OpenID provider for the single sign-on tests: the npm package
//! oidc-provider (installed by `./test` into target/test-env/node, see
//! deps.txt) running tests/oidc/provider.mjs on a loopback port, killed on
//! drop. Its clients, users and groups are described in that script.

use crate::git_server::free_port;
use crate::process::Process;
use std::path::{Path, PathBuf};
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The hub's confidential client at the provider, and its secret.
pub const HUB_CLIENT: &str = "switchyard-hub";
pub const HUB_SECRET: &str = "hub-secret";
/// The CLI's public client (device flow).
pub const CLI_CLIENT: &str = "switchyard-cli";

/// A running provider.
pub struct TestProvider {
    pub process: Process,
    pub issuer: String,
    /// `signing.der` (the key the provider signs with) and `rogue.der` (one
    /// with the same kid that it never published), PKCS#8.
    pub key_dir: PathBuf,
}

/// Where `./test` installs npm packages.
fn node_prefix() -> PathBuf {
    let env = std::env::var_os("SWITCHYARD_TEST_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-env"));
    env.join("node")
}

/// A loopback port for a provider started later (so a hub can be
/// configured with its issuer first).
pub fn reserve_port() -> u16 {
    free_port()
}

/// The issuer URL of a provider on `port`.
pub fn issuer(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl TestProvider {
    /// Start the provider on `port`, redirecting browsers back to
    /// `hub_redirect_uri`; waits (bounded) until it listens.
    pub fn start(dir: &Path, port: u16, hub_redirect_uri: &str) -> TestProvider {
        let prefix = node_prefix();
        assert!(
            prefix.join("node_modules/oidc-provider").is_dir(),
            "npm package oidc-provider is missing from {}; run ./test --install-only",
            prefix.display()
        );
        // ES modules resolve packages from the script's own directory, so
        // the script runs from beside node_modules.
        let script = prefix.join(format!("switchyard-test-provider-{port}.mjs"));
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc/provider.mjs"),
            &script,
        )
        .expect("copy the provider script");
        let key_dir = dir.join("provider-keys");
        std::fs::create_dir_all(&key_dir).expect("key dir");
        let envs = [
            ("PORT", port.to_string()),
            ("HUB_REDIRECT_URI", hub_redirect_uri.to_owned()),
            ("KEY_DIR", key_dir.display().to_string()),
        ];
        let mut process = Process::spawn(
            Path::new("/usr/bin/node"),
            &[script.display().to_string()],
            &envs,
            &dir.join("logs"),
            "oidc-provider",
        );
        let ready = process.wait_for_stdout("ready ", START_TIMEOUT);
        let _ = std::fs::remove_file(&script);
        assert!(
            ready && process.is_running(),
            "oidc-provider did not start:\n{}{}",
            process.stdout_text(),
            process.stderr_text()
        );
        TestProvider {
            process,
            issuer: issuer(port),
            key_dir,
        }
    }
}
