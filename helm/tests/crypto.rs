//! Sprig's random cryptographic functions (keys, certificates, bcrypt,
//! randBytes, encryptAES): deterministic per seed and call site, and their
//! output is what it claims to be (PEMs parse, CAs are CAs, signed
//! certificates verify against their CA, hashes verify).

use std::collections::BTreeMap;

use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use switchyard_helm::{RenderOptions, Value, render_files};
use x509_parser::prelude::*;

const NOW: i64 = 1_760_000_000;

fn render(template: &str, seed: &str, values: serde_json::Value) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    f.insert(
        "Chart.yaml".to_string(),
        b"apiVersion: v2\nname: c\nversion: 0.1.0\n".to_vec(),
    );
    f.insert("templates/t.yaml".to_string(), template.as_bytes().to_vec());
    let opts = RenderOptions {
        seed: seed.as_bytes().to_vec(),
        now_unix: NOW,
        values: vec![Value::from_json(&values)],
        ..RenderOptions::default()
    };
    render_files(&f, &opts).unwrap_or_else(|e| panic!("render failed: {e}"))
}

/// The rendered document as JSON (every template here writes one JSON object).
fn json(template: &str, seed: &str) -> serde_json::Value {
    let out = render(template, seed, serde_json::json!({}));
    let text = out.values().next().expect("one template");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn der_of(pem: &str) -> Vec<u8> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM block");
    p.contents
}

/// The certificate's signature verifies with `issuer`'s RSA public key.
fn verify_rsa_signed(cert_der: &[u8], issuer_der: &[u8]) {
    let (_, cert) = parse_x509_certificate(cert_der).unwrap();
    let (_, issuer) = parse_x509_certificate(issuer_der).unwrap();
    let key = rsa::PublicKey::from_public_key_der(issuer.public_key().raw).unwrap();
    let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key);
    let sig = rsa::pkcs1v15::Signature::try_from(cert.signature_value.data.as_ref()).unwrap();
    vk.verify(cert.tbs_certificate.as_ref(), &sig)
        .expect("signature verifies with the issuer's key");
    assert_eq!(cert.issuer(), issuer.subject());
}

const CERTS: &str = r#"
{{- $ca := genCA "my-ca" 365 }}
{{- $leaf := genSignedCert "svc.example" (list "10.0.0.1" "::1") (list "svc.example" "svc") 30 $ca }}
{{- $self := genSelfSignedCert "self" nil (list "self.local") 7 }}
{{- dict "ca" $ca "leaf" $leaf "self" $self | toJson }}
"#;

#[test]
fn certificates_are_valid_and_chain_to_their_ca() {
    let out = json(CERTS, "app/cluster-a");
    let ca_pem = out["ca"]["Cert"].as_str().unwrap();
    assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(
        out["ca"]["Key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----\n")
    );
    let ca_der = der_of(ca_pem);
    let (_, ca) = parse_x509_certificate(&ca_der).unwrap();
    assert!(ca.is_ca(), "genCA makes a CA");
    let bc = ca.basic_constraints().unwrap().unwrap();
    assert!(bc.value.ca);
    assert_eq!(
        ca.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "my-ca"
    );
    assert_eq!(ca.validity().not_before.timestamp(), NOW);
    assert_eq!(ca.validity().not_after.timestamp(), NOW + 365 * 86_400);
    let ku = ca.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.digital_signature() && ku.key_encipherment());
    assert_eq!(
        rsa::PublicKey::from_public_key_der(ca.public_key().raw)
            .map(|k| rsa::traits::PublicKeyParts::size(&k) * 8)
            .unwrap(),
        2048
    );
    verify_rsa_signed(&ca_der, &ca_der);

    let leaf_der = der_of(out["leaf"]["Cert"].as_str().unwrap());
    let (_, leaf) = parse_x509_certificate(&leaf_der).unwrap();
    assert!(!leaf.is_ca());
    assert_eq!(
        leaf.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "svc.example"
    );
    assert_eq!(leaf.validity().not_after.timestamp(), NOW + 30 * 86_400);
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => format!("dns:{d}"),
            GeneralName::IPAddress(ip) => format!("ip:{}", ip.len()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["ip:4", "ip:16", "dns:svc.example", "dns:svc"]);
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    verify_rsa_signed(&leaf_der, &ca_der);
    // The leaf's key is not the CA's.
    assert_ne!(out["leaf"]["Key"], out["ca"]["Key"]);

    let self_der = der_of(out["self"]["Cert"].as_str().unwrap());
    verify_rsa_signed(&self_der, &self_der);
}

#[test]
fn random_outputs_are_deterministic_per_seed_and_call_site() {
    let t = r#"{{ dict "a" (genPrivateKey "ecdsa") "b" (genPrivateKey "ecdsa") "c" (randBytes 24) "d" (bcrypt "pw") "e" (encryptAES "k" "text") "f" (genCA "x" 1).Cert | toJson }}"#;
    let one = json(t, "app/cluster-a");
    let again = json(t, "app/cluster-a");
    assert_eq!(one, again, "the same inputs render byte-identically");
    let other_cluster = json(t, "app/cluster-b");
    for k in ["a", "b", "c", "d", "e", "f"] {
        assert_ne!(one[k], other_cluster[k], "{k} differs per cluster seed");
    }
    // Two call sites in one template differ.
    assert_ne!(one["a"], one["b"]);
    // The same call site run twice (in a range) differs too.
    let ranged = render(
        r#"{{ range until 2 }}{{ randBytes 8 }}
{{ end }}"#,
        "s",
        serde_json::json!({}),
    );
    let lines: Vec<&str> = ranged.values().next().unwrap().lines().collect();
    assert_eq!(lines.len(), 2);
    assert_ne!(lines[0], lines[1]);
}

#[test]
fn keys_of_every_kind_parse_and_sign() {
    let t = r#"
{{- $ec := genPrivateKey "ecdsa" }}
{{- $ed := genPrivateKey "ed25519" }}
{{- $rsa := (genCA "k" 1).Key }}
{{- $ca := genCAWithKey "ec-ca" 10 $ec }}
{{- dict "ec" $ec "ed" $ed "bad" (genPrivateKey "nope")
  "ecself" (genSelfSignedCertWithKey "e" nil nil 1 $ed)
  "ecca" $ca
  "signed" (genSignedCertWithKey "leaf" nil (list "l") 1 $ca $rsa)
  "custom" (genSignedCert "c" nil nil 1 (buildCustomCert ($ca.Cert | b64enc) ($ca.Key | b64enc)))
  | toJson }}"#;
    let out = json(t, "s");
    assert!(
        out["ec"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
    );
    assert!(
        out["ed"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    assert_eq!(out["bad"], "Unknown type nope");
    for k in ["ecself", "ecca", "signed", "custom"] {
        let der = der_of(out[k]["Cert"].as_str().unwrap());
        parse_x509_certificate(&der).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    let ecca_der = der_of(out["ecca"]["Cert"].as_str().unwrap());
    let (_, ecca) = parse_x509_certificate(&ecca_der).unwrap();
    assert!(ecca.is_ca());
    assert_eq!(out["ecca"]["Key"], out["ec"]);
    let signed_der = der_of(out["signed"]["Cert"].as_str().unwrap());
    let (_, signed) = parse_x509_certificate(&signed_der).unwrap();
    assert_eq!(signed.issuer(), ecca.subject());
    // The EC CA's signature over the leaf verifies with its P-256 key.
    use p256::pkcs8::DecodePublicKey as _;
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(ecca.public_key().raw).unwrap();
    let sig = p256::ecdsa::Signature::from_der(signed.signature_value.data.as_ref()).unwrap();
    vk.verify(signed.tbs_certificate.as_ref(), &sig).unwrap();
    // The leaf carries the key it was given.
    assert!(
        out["signed"]["Key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----\n")
    );
}

#[test]
fn bcrypt_and_htpasswd_verify() {
    let out = json(
        r#"{{ dict "b" (bcrypt "s3cret") "h" (htpasswd "alice" "pw") "bad" (htpasswd "a:b" "pw") "long" (bcrypt (repeat 73 "x")) | toJson }}"#,
        "s",
    );
    let b = out["b"].as_str().unwrap();
    assert!(b.starts_with("$2a$10$"), "{b}");
    assert!(bcrypt::verify("s3cret", b).unwrap());
    assert!(!bcrypt::verify("other", b).unwrap());
    let h = out["h"].as_str().unwrap();
    let (user, hash) = h.split_once(':').unwrap();
    assert_eq!(user, "alice");
    assert!(bcrypt::verify("pw", hash).unwrap());
    assert_eq!(out["bad"], "invalid username: a:b");
    assert!(
        out["long"]
            .as_str()
            .unwrap()
            .contains("password length exceeds 72 bytes")
    );
}

#[test]
fn rand_bytes_and_aes() {
    let out = json(
        r#"{{ dict "r" (randBytes 33) "z" (randBytes 0) "aes" (encryptAES "key" "hello" | decryptAES "key") | toJson }}"#,
        "s",
    );
    use base64::Engine as _;
    let r = base64::engine::general_purpose::STANDARD
        .decode(out["r"].as_str().unwrap())
        .unwrap();
    assert_eq!(r.len(), 33);
    assert_eq!(out["z"], "");
    assert_eq!(out["aes"], "hello");
}

#[test]
fn get_host_by_name_is_refused_with_a_way_out() {
    let mut f = BTreeMap::new();
    f.insert(
        "Chart.yaml".to_string(),
        b"apiVersion: v2\nname: c\nversion: 0.1.0\n".to_vec(),
    );
    f.insert(
        "templates/t.yaml".to_string(),
        br#"ip: {{ getHostByName "example.com" }}"#.to_vec(),
    );
    let e = render_files(&f, &RenderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no network"), "{e}");
    assert!(e.contains("--set"), "{e}");
}

#[test]
fn certificates_signed_by_an_openssl_ca_chain_to_it() {
    // The test CA and key of the oracle chart, made by openssl (see its values.yaml).
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/charts/sprig-crypto/values.yaml"),
    )
    .unwrap();
    let values =
        switchyard_helm::yaml::to_canonical_json(&switchyard_helm::yaml::parse(&text).unwrap());
    let out = render(
        r#"{{ (genSignedCert "leaf" nil (list "x.example") 2 (buildCustomCert (.Values.ca | b64enc) (.Values.rsa8 | b64enc))).Cert }}"#,
        "s",
        values.clone(),
    );
    let leaf_der = der_of(out.values().next().unwrap());
    let ca_der = der_of(values["ca"].as_str().unwrap());
    verify_rsa_signed(&leaf_der, &ca_der);
    let (_, leaf) = parse_x509_certificate(&leaf_der).unwrap();
    let (_, ca) = parse_x509_certificate(&ca_der).unwrap();
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.clone(),
            _ => None,
        })
        .expect("an authority key identifier");
    let ski = ca
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.clone()),
            _ => None,
        })
        .expect("the CA's subject key identifier");
    assert_eq!(aki.0, ski.0, "the leaf names its CA's key");
}
