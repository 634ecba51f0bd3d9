//! The admin API over TLS with the hub's own certificate, end to end with
//! the real binaries: the local CLI trusts the CA in the data dir, a remote
//! one needs `--server-ca-file` or `--ca-sha256` (or their environment variables),
//! a wrong CA or pin is a clear error, and plain HTTP is opt-in on loopback.

use serde_json::Value;
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::process::{Output, binary, run};

/// `switchyard cluster list -o json --server URL EXTRA` with the admin token.
fn remote(hub: &TestHub, url: &str, extra: &[&str], envs: &[(&str, String)]) -> Output {
    let mut args: Vec<String> = ["cluster", "list", "-o", "json", "--server", url]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let token = std::fs::read_to_string(hub.data_dir().join("admin-token")).unwrap();
    let mut envs = envs.to_vec();
    envs.push(("SWITCHYARD_TOKEN", token.trim().to_owned()));
    run(&binary("switchyard"), &args, &envs, SOON)
}

fn hub_json(hub: &TestHub) -> Value {
    serde_json::from_slice(&std::fs::read(hub.data_dir().join("hub.json")).unwrap()).unwrap()
}

#[test]
fn the_cli_verifies_the_hub_by_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &["--public-name", "hub.test"]);
    let url = hub.admin_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    hub.cli_json(&["cluster", "add", "edge-1"]);
    let ca_file = hub.ca_file().display().to_string();
    let pin = hub_json(&hub)["ca_sha256"].as_str().unwrap().to_owned();

    // The CA by file (flag or environment) or by fingerprint (flag or
    // environment, in the colon-separated upper-case form openssl prints).
    let colons = pin
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let localhost = url.replace("127.0.0.1", "localhost");
    for (url, extra, envs) in [
        (&url, vec!["--server-ca-file", &ca_file], vec![]),
        (
            &localhost,
            vec![],
            vec![("SWITCHYARD_CA_FILE", ca_file.clone())],
        ),
        (&url, vec!["--ca-sha256", &pin], vec![]),
        (&url, vec![], vec![("SWITCHYARD_CA_SHA256", colons.clone())]),
    ] {
        let out = remote(&hub, url, &extra, &envs);
        assert!(out.success(), "{extra:?} {envs:?}: {}", out.stderr);
        let clusters: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(clusters[0]["name"], "edge-1", "{clusters}");
    }

    // Another hub's CA, and a pin of it: refused, saying what was presented.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestHub::start(other_dir.path(), &[]);
    let other_ca = other.ca_file().display().to_string();
    let other_pin = hub_json(&other)["ca_sha256"].as_str().unwrap().to_owned();
    let wrong_file = remote(&hub, &url, &["--server-ca-file", &other_ca], &[]);
    assert!(!wrong_file.success());
    assert!(
        wrong_file
            .stderr
            .contains("presented a certificate not signed by the CA in")
            && wrong_file.stderr.contains(&other_ca),
        "{}",
        wrong_file.stderr
    );
    let wrong_pin = remote(&hub, &url, &["--ca-sha256", &other_pin], &[]);
    assert!(!wrong_pin.success());
    assert!(
        wrong_pin.stderr.contains("is not the one you pinned")
            && wrong_pin.stderr.contains(&format!("it presented {pin}")),
        "{}",
        wrong_pin.stderr
    );

    // No CA to trust at all, and plain HTTP to the HTTPS port.
    let no_ca = remote(&hub, &url, &[], &[]);
    assert!(
        !no_ca.success() && no_ca.stderr.contains("--server-ca-file FILE"),
        "{}",
        no_ca.stderr
    );
    let plain = remote(&hub, &url.replace("https://", "http://"), &[], &[]);
    assert!(
        !plain.success() && plain.stderr.contains("speaks HTTPS"),
        "{}",
        plain.stderr
    );
}

#[test]
fn the_certificate_names_what_users_dial_and_plain_http_is_opt_in_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(
        dir.path(),
        &["--public-name", "hub.test", "--http-insecure"],
    );
    let pem = std::fs::read(hub.data_dir().join("ca/server.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let names: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .expect("subject alternative names")
        .value
        .general_names
        .iter()
        .map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
            x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap()).to_string(),
                _ => std::net::IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap()).to_string(),
            },
            other => format!("{other:?}"),
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["127.0.0.1", "::1", "hub.test", "localhost"],
        "{names:?}"
    );

    // --http-insecure on loopback: the discovery file says http:// and the
    // local CLI follows it.
    let url = hub.admin_url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    hub.cli_json(&["cluster", "add", "edge-1"]);
    assert_eq!(hub.cli_json(&["cluster", "list"])[0]["name"], "edge-1");
}
