//! lighttpd over HTTPS for the tests that need a real web server (Git's
//! smart HTTP through git-http-backend, a Helm chart repository): a server
//! certificate from a private CA, a free loopback port, bounded waits and
//! retries when another test takes the port first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::git_server::{accepts, free_port, require};
use crate::process::{Process, wait_until};

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where lighttpd's modules are (Debian).
const MODULES: &str = "/usr/lib/lighttpd";

/// Make `dir/tls` hold a CA (`ca.pem`) and a server certificate for
/// 127.0.0.1 and localhost (`server.pem`, `server-key.pem`); returns
/// `dir/tls`. Fails when lighttpd or its TLS module is missing.
pub(crate) fn prepare_tls(dir: &Path) -> PathBuf {
    require("lighttpd", "lighttpd");
    assert!(
        Path::new(MODULES).join("mod_openssl.so").exists(),
        "lighttpd's TLS module is missing (Debian package lighttpd-mod-openssl); run ./test"
    );
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    let ca = switchyard_certs::CertificateAuthority::load_or_create(&tls).expect("test CA");
    ca.load_or_issue_server_identity(&tls, &["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server certificate");
    tls
}

/// Start lighttpd with the configuration `config(port, attempt)` writes
/// for a free port (its error log should be `dir/error-{attempt}.log`), in
/// `dir`; up to five attempts. Returns the running server and its port.
pub(crate) fn start(dir: &Path, config: impl Fn(u16, usize) -> String) -> (Process, u16) {
    let lighttpd = require("lighttpd", "lighttpd");
    let mut last_err = String::new();
    for attempt in 0..5 {
        let port = free_port();
        let conf_path = dir.join(format!("lighttpd-{attempt}.conf"));
        std::fs::write(&conf_path, config(port, attempt)).expect("lighttpd config");
        let args = vec![
            "-D".to_owned(),
            "-m".to_owned(),
            MODULES.to_owned(),
            "-f".to_owned(),
            conf_path.display().to_string(),
        ];
        let mut process =
            Process::spawn(&lighttpd, &args, &[], dir, &format!("lighttpd-{attempt}"));
        if wait_until(START_TIMEOUT, || accepts(port) || !process.is_running())
            && process.is_running()
        {
            return (process, port);
        }
        last_err = format!(
            "{}{}",
            process.stderr_text(),
            std::fs::read_to_string(dir.join(format!("error-{attempt}.log"))).unwrap_or_default()
        );
        process.kill9();
    }
    panic!("lighttpd did not start: {last_err}");
}
