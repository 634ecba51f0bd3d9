//! Sprig's key and certificate functions (`genPrivateKey`, `genCA`,
//! `genSelfSignedCert`, `genSignedCert`, their `WithKey` forms,
//! `buildCustomCert`), plus `bcrypt`, `htpasswd` and `randBytes`. Keys,
//! serial numbers and salts come from the call site's seeded generator and
//! validity starts at the caller's `now`, so a render of the same inputs is
//! byte-identical; signatures are deterministic (PKCS#1 v1.5, RFC 6979
//! ECDSA, Ed25519). Keys are RSA, ECDSA P-256 or Ed25519, as Sprig makes them.

use super::*;
use p256::elliptic_curve::Generate;
use rand::RngCore;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::signature::{SignatureEncoding, Signer};

pub(super) fn add(m: &mut FuncMap) {
    use Ty::*;
    m.insert("randBytes", &[Int], None, |e, a| {
        let n = i(&a[0]);
        if n < 0 {
            return Err("runtime error: makeslice: len out of range".into());
        }
        if n > MAX_RANDOM_BYTES {
            return Err(format!(
                "randBytes: {n} bytes is more than this engine makes ({MAX_RANDOM_BYTES})"
            ));
        }
        let mut b = vec![0u8; n as usize];
        rng(e).fill(&mut b[..]);
        Ok(base64::engine::general_purpose::STANDARD.encode(b).into())
    });
    m.insert("bcrypt", &[Str], None, |e, a| {
        e.charge(cost::BCRYPT)?;
        Ok(bcrypt_hash(&mut rng(e), s(&a[0])).into())
    });
    m.insert("htpasswd", &[Str, Str], None, |e, a| {
        let user = s(&a[0]);
        if user.contains(':') {
            return Ok(format!("invalid username: {user}").into());
        }
        e.charge(cost::BCRYPT)?;
        Ok(format!("{user}:{}", bcrypt_hash(&mut rng(e), s(&a[1]))).into())
    });
    m.insert("genPrivateKey", &[Str], None, |e, a| {
        e.charge(match s(&a[0]) {
            "" | "rsa" => cost::RSA_4096,
            _ => cost::EC,
        })?;
        let key = match s(&a[0]) {
            "" | "rsa" => Key::rsa(&mut rng(e), 4096),
            "ecdsa" => Key::ecdsa(&mut rng(e)),
            "ed25519" => Ok(Key::ed25519(&mut rng(e))),
            "dsa" => {
                return Err(
                    "genPrivateKey \"dsa\" is not supported by switchyard's Helm engine \
                     (DSA is deprecated): use \"rsa\", \"ecdsa\" or \"ed25519\""
                        .into(),
                );
            }
            t => return Ok(format!("Unknown type {t}").into()),
        };
        match key {
            Ok(k) => Ok(k.private_pem().into()),
            Err(err) => Ok(format!("failed to generate private key: {err}").into()),
        }
    });
    m.insert("buildCustomCert", &[Str, Str], None, |_, a| {
        build_custom_cert(s(&a[0]), s(&a[1])).map(cert_value)
    });
    m.insert("genCA", &[Str, Int], None, |e, a| {
        let mut r = rng(e);
        e.charge(cost::RSA_2048 + cost::SIGN)?;
        let key = Key::rsa(&mut r, 2048).map_err(|e| format!("error generating rsa key: {e}"))?;
        gen_ca(e, &mut r, s(&a[0]), i(&a[1]), key).map(cert_value)
    });
    m.insert("genCAWithKey", &[Str, Int, Str], None, |e, a| {
        let key =
            parse_private_key_pem(s(&a[2])).map_err(|e| format!("parsing private key: {e}"))?;
        let mut r = rng(e);
        e.charge(cost::SIGN)?;
        gen_ca(e, &mut r, s(&a[0]), i(&a[1]), key).map(cert_value)
    });
    m.insert(
        "genSelfSignedCert",
        &[Str, List, List, Int],
        None,
        |e, a| {
            let mut r = rng(e);
            e.charge(cost::RSA_2048 + cost::SIGN)?;
            let key =
                Key::rsa(&mut r, 2048).map_err(|e| format!("error generating rsa key: {e}"))?;
            let t = base_template(e, &mut r, s(&a[0]), &a[1], &a[2], i(&a[3]))?;
            self_signed(t, key).map(cert_value)
        },
    );
    m.insert(
        "genSelfSignedCertWithKey",
        &[Str, List, List, Int, Str],
        None,
        |e, a| {
            let key =
                parse_private_key_pem(s(&a[4])).map_err(|e| format!("parsing private key: {e}"))?;
            let mut r = rng(e);
            e.charge(cost::SIGN)?;
            let t = base_template(e, &mut r, s(&a[0]), &a[1], &a[2], i(&a[3]))?;
            self_signed(t, key).map(cert_value)
        },
    );
    m.insert(
        "genSignedCert",
        &[Str, List, List, Int, Any],
        None,
        |e, a| {
            let mut r = rng(e);
            e.charge(cost::RSA_2048 + cost::SIGN)?;
            let key =
                Key::rsa(&mut r, 2048).map_err(|e| format!("error generating rsa key: {e}"))?;
            signed(e, &mut r, &a, key).map(cert_value)
        },
    );
    m.insert(
        "genSignedCertWithKey",
        &[Str, List, List, Int, Any, Str],
        None,
        |e, a| {
            let key =
                parse_private_key_pem(s(&a[5])).map_err(|e| format!("parsing private key: {e}"))?;
            let mut r = rng(e);
            e.charge(cost::SIGN)?;
            signed(e, &mut r, &a, key).map(cert_value)
        },
    );
}

/// Steps charged to the render's budget before costly work, roughly in
/// proportion to its time (one step is a node walked or a function called;
/// the default budget of 50 million allows some twenty 4096-bit RSA keys).
pub(super) mod cost {
    pub(crate) const RSA_2048: u64 = 300_000;
    pub(crate) const RSA_4096: u64 = 2_500_000;
    pub(crate) const EC: u64 = 5_000;
    pub(crate) const SIGN: u64 = 20_000;
    pub(crate) const BCRYPT: u64 = 500_000;
    pub(crate) const SCRYPT: u64 = 1_000_000;
}

/// `randBytes` beyond this fails: renders stay bounded in memory.
const MAX_RANDOM_BYTES: i64 = 1 << 20;

type Gen = rand_chacha::ChaCha20Rng;

/// The seeded generator as the RustCrypto crates take it (rand_core 0.10).
struct CryptoRng<'a>(&'a mut Gen);

impl rand_core::TryRng for CryptoRng<'_> {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for CryptoRng<'_> {}

/// Sprig's `bcrypt` (cost 10, `$2a$`), with a salt from the seeded generator.
fn bcrypt_hash(r: &mut Gen, password: &str) -> String {
    if password.len() > 72 {
        // golang.org/x/crypto/bcrypt refuses what it would silently cut.
        return "failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes"
            .into();
    }
    let mut salt = [0u8; 16];
    r.fill_bytes(&mut salt);
    match bcrypt::hash_with_salt(password, 10, salt) {
        Ok(h) => h.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

/// A private key of a kind Sprig makes or reads.
enum Key {
    Rsa(Box<rsa::PrivateKey>, Vec<u8>),
    Ecdsa(p256::ecdsa::SigningKey, Vec<u8>),
    Ed25519(ed25519_dalek::SigningKey, [u8; 32]),
}

impl Key {
    fn rsa(r: &mut Gen, bits: usize) -> Result<Key, String> {
        let k = rsa::PrivateKey::new(&mut CryptoRng(r), bits).map_err(|e| e.to_string())?;
        Key::from_rsa(k)
    }

    fn from_rsa(k: rsa::PrivateKey) -> Result<Key, String> {
        let public = k
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| e.to_string())?
            .into_vec();
        Ok(Key::Rsa(Box::new(k), public))
    }

    fn ecdsa(r: &mut Gen) -> Result<Key, String> {
        Ok(Key::from_ecdsa(p256::ecdsa::SigningKey::from(
            p256::SecretKey::generate_from_rng(&mut CryptoRng(r)),
        )))
    }

    fn from_ecdsa(k: p256::ecdsa::SigningKey) -> Key {
        let public = k.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        Key::Ecdsa(k, public)
    }

    fn ed25519(r: &mut Gen) -> Key {
        let mut seed = [0u8; 32];
        r.fill_bytes(&mut seed);
        Key::from_ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    fn from_ed25519(k: ed25519_dalek::SigningKey) -> Key {
        let public = k.verifying_key().to_bytes();
        Key::Ed25519(k, public)
    }

    /// The key as Sprig's `pemBlockForKey` writes it.
    fn private_pem(&self) -> String {
        match self {
            Key::Rsa(k, _) => match k.to_pkcs1_der() {
                Ok(d) => pem_encode("RSA PRIVATE KEY", d.as_bytes()),
                Err(e) => format!("failed to encode key: {e}"),
            },
            Key::Ecdsa(k, _) => match p256::SecretKey::from(k).to_sec1_der() {
                Ok(d) => pem_encode("EC PRIVATE KEY", &d),
                Err(e) => format!("failed to encode key: {e}"),
            },
            Key::Ed25519(k, _) => {
                // PKCS#8 v1 as Go's MarshalPKCS8PrivateKey writes it: the seed only.
                let mut der = vec![
                    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04,
                    0x22, 0x04, 0x20,
                ];
                der.extend_from_slice(&k.to_bytes());
                pem_encode("PRIVATE KEY", &der)
            }
        }
    }
}

impl rcgen::PublicKeyData for Key {
    fn der_bytes(&self) -> &[u8] {
        match self {
            Key::Rsa(_, p) | Key::Ecdsa(_, p) => p,
            Key::Ed25519(_, p) => p,
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Key::Rsa(..) => &rcgen::PKCS_RSA_SHA256,
            Key::Ecdsa(..) => &rcgen::PKCS_ECDSA_P256_SHA256,
            Key::Ed25519(..) => &rcgen::PKCS_ED25519,
        }
    }
}

impl rcgen::SigningKey for Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(match self {
            Key::Rsa(k, _) => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone())
                .try_sign(msg)
                .map_err(|_| rcgen::Error::RemoteKeyError)?
                .to_vec(),
            Key::Ecdsa(k, _) => {
                let sig: p256::ecdsa::Signature =
                    k.try_sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)?;
                sig.to_der().to_vec()
            }
            Key::Ed25519(k, _) => k.sign(msg).to_bytes().to_vec(),
        })
    }
}

/// Go's `pem.Encode`: base64 in lines of 64.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Go's `pem.Decode` for the first block: its type and bytes.
fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let (label, rest) = rest.split_once("-----")?;
    let end_marker = format!("-----END {label}-----");
    let end = rest.find(&end_marker)?;
    let body: String = rest[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    Some((label.to_string(), der))
}

/// Sprig's `parsePrivateKeyPEM` for the key types this engine signs with.
fn parse_private_key_pem(text: &str) -> Result<Key, String> {
    let (label, der) = pem_decode(text).ok_or("no PEM data in input")?;
    if label == "PRIVATE KEY" {
        use rsa::pkcs8::DecodePrivateKey;
        if let Ok(k) = rsa::PrivateKey::from_pkcs8_der(&der) {
            return Key::from_rsa(k);
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(&der) {
            return Ok(Key::from_ecdsa(k.into()));
        }
        return ed25519_dalek::SigningKey::from_pkcs8_der(&der)
            .map(Key::from_ed25519)
            .map_err(|e| {
                format!(
                    "decoding PEM as PKCS#8: {e} (this engine reads RSA, ECDSA P-256 and Ed25519 keys)"
                )
            });
    }
    let Some(kind) = label.strip_suffix(" PRIVATE KEY") else {
        return Err(format!("no private key data in PEM block of type {label}"));
    };
    match kind {
        "RSA" => rsa::PrivateKey::from_pkcs1_der(&der)
            .map_err(|e| format!("parsing RSA private key from PEM: {e}"))
            .and_then(Key::from_rsa),
        "EC" => p256::SecretKey::from_sec1_der(&der)
            .map(|k| Key::from_ecdsa(k.into()))
            .map_err(|e| {
                format!("parsing EC private key from PEM: {e} (this engine reads P-256 keys only)")
            }),
        "DSA" => Err("DSA keys are not supported by switchyard's Helm engine".into()),
        _ => Err(format!("invalid private key type {label}")),
    }
}

/// Sprig's `certificate`: `.Cert` and `.Key`, PEM text.
pub(super) struct Certificate {
    cert: String,
    key: String,
}

impl crate::value::Object for Certificate {
    fn type_name(&self) -> &'static str {
        "sprig.certificate"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Cert" => Some(Value::str(self.cert.as_str())),
            "Key" => Some(Value::str(self.key.as_str())),
            _ => None,
        }
    }
    fn display(&self) -> String {
        format!("{{{} {}}}", self.cert, self.key)
    }
    fn kind(&self) -> &'static str {
        "struct"
    }
    fn to_data(&self) -> Value {
        let mut m = BTreeMap::new();
        m.insert("Cert".to_string(), Value::str(self.cert.as_str()));
        m.insert("Key".to_string(), Value::str(self.key.as_str()));
        Value::map(m)
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

fn cert_value(c: Certificate) -> Value {
    Value::Object(std::rc::Rc::new(c))
}

fn build_custom_cert(b64cert: &str, b64key: &str) -> Result<Certificate, String> {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let cert = b64
        .decode(b64cert)
        .map_err(|_| "unable to decode base64 certificate")?;
    let key = b64
        .decode(b64key)
        .map_err(|_| "unable to decode base64 private key")?;
    let cert = String::from_utf8_lossy(&cert).into_owned();
    let key = String::from_utf8_lossy(&key).into_owned();
    let (_, der) = pem_decode(&cert).ok_or("unable to decode certificate")?;
    x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("error parsing certificate: decodedCert.Bytes: {e}"))?;
    parse_private_key_pem(&key).map_err(|e| format!("error parsing private key: {e}"))?;
    Ok(Certificate { cert, key })
}

/// Sprig's `getBaseCertTemplate`: serial from the seeded generator, valid
/// from the caller's `now` for `days` days, for servers and clients.
fn base_template(
    e: &Exec<'_>,
    r: &mut Gen,
    cn: &str,
    ips: &Value,
    dns: &Value,
    days: i64,
) -> Result<rcgen::CertificateParams, String> {
    let mut t = rcgen::CertificateParams::default();
    let mut sans = Vec::new();
    for ip in list_items(ips) {
        let Value::String(text) = &ip else {
            return Err(format!(
                "error parsing ip: {} is not a string",
                gofmt::sprint_value(&ip)
            ));
        };
        let addr: std::net::IpAddr = text
            .parse()
            .map_err(|_| format!("error parsing ip: {text}"))?;
        sans.push(rcgen::SanType::IpAddress(addr));
    }
    for name in list_items(dns) {
        let Value::String(text) = &name else {
            return Err(format!(
                "error processing alternate dns name: {} is not a string",
                gofmt::sprint_value(&name)
            ));
        };
        let ia5 = rcgen::string::Ia5String::try_from(text.to_string()).map_err(|_| {
            format!("error creating certificate: x509: SAN dNSName is malformed: {text}")
        })?;
        sans.push(rcgen::SanType::DnsName(ia5));
    }
    t.subject_alt_names = sans;
    let mut serial = [0u8; 16];
    r.fill_bytes(&mut serial);
    let first = serial.iter().position(|b| *b != 0).unwrap_or(15);
    t.serial_number = Some(rcgen::SerialNumber::from_slice(&serial[first..]));
    let mut dn = rcgen::DistinguishedName::new();
    if !cn.is_empty() {
        dn.push(rcgen::DnType::CommonName, cn);
    }
    t.distinguished_name = dn;
    let now = host(e).now_unix;
    let not_after = now.saturating_add(days.saturating_mul(86_400));
    let at = |u: i64| {
        time::OffsetDateTime::from_unix_timestamp(u)
            .map_err(|err| format!("error creating certificate: {err}"))
    };
    t.not_before = at(now)?;
    t.not_after = at(not_after)?;
    t.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    t.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    t.is_ca = rcgen::IsCa::ExplicitNoCa;
    Ok(t)
}

fn list_items(v: &Value) -> Vec<Value> {
    match v {
        Value::List(l) => l.to_vec(),
        _ => Vec::new(),
    }
}

fn gen_ca(e: &Exec<'_>, r: &mut Gen, cn: &str, days: i64, key: Key) -> Result<Certificate, String> {
    let mut t = base_template(e, r, cn, &Value::Nil, &Value::Nil, days)?;
    t.key_usages.push(rcgen::KeyUsagePurpose::KeyCertSign);
    t.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    self_signed(t, key)
}

fn self_signed(t: rcgen::CertificateParams, key: Key) -> Result<Certificate, String> {
    let cert = t
        .self_signed(&key)
        .map_err(|e| format!("error creating certificate: {e}"))?;
    Ok(Certificate {
        cert: pem_encode("CERTIFICATE", cert.der()),
        key: key.private_pem(),
    })
}

/// `genSignedCert(cn, ips, dns, days, ca)` with the new certificate's key.
fn signed(e: &Exec<'_>, r: &mut Gen, a: &[Value], key: Key) -> Result<Certificate, String> {
    let ca = match &a[4] {
        Value::Object(o) => o
            .as_any()
            .and_then(|x| x.downcast_ref::<Certificate>())
            .map(|c| (c.cert.clone(), c.key.clone())),
        _ => None,
    };
    let Some((ca_cert, ca_key)) = ca else {
        return Err(format!(
            "wrong type for value; expected sprig.certificate; got {}",
            a[4].type_name()
        ));
    };
    let (_, der) = pem_decode(&ca_cert).ok_or("unable to decode certificate")?;
    x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("error parsing certificate: decodedSignerCert.Bytes: {e}"))?;
    let signer =
        parse_private_key_pem(&ca_key).map_err(|e| format!("error parsing private key: {e}"))?;
    let issuer = rcgen::Issuer::from_ca_cert_der(&der.into(), signer)
        .map_err(|e| format!("error parsing certificate: decodedSignerCert.Bytes: {e}"))?;
    let mut t = base_template(e, r, s(&a[0]), &a[1], &a[2], i(&a[3]))?;
    t.use_authority_key_identifier_extension = true;
    let cert = t
        .signed_by(&key, &issuer)
        .map_err(|e| format!("error creating certificate: {e}"))?;
    Ok(Certificate {
        cert: pem_encode("CERTIFICATE", cert.der()),
        key: key.private_pem(),
    })
}
