//! JSON Web Tokens as OpenID providers sign them: split a compact JWS,
//! check its signature against the provider's published keys (JWKS), and
//! check the claims the hub relies on. No I/O and no clock: the keys and
//! `now` are passed in, so every refusal is unit-tested.
//!
//! Headers, JWKs and signatures are the `jsonwebtoken` crate's (on ring,
//! already the hub's crypto library): RS256/384/512, PS256/384/512,
//! ES256/384 and EdDSA. This module decides which published key may check
//! a token, and with which algorithm: the key's, never just the header's
//! (no algorithm confusion). `none` and HMAC are refused: the hub trusts
//! only the provider's public keys. Claims are checked here, against the
//! `now` passed in.

use super::Error;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Seconds of clock difference tolerated between hub and provider.
pub(super) const LEEWAY_SECS: u64 = 60;

/// Longest token looked at; real ID tokens are a few KiB.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The algorithms a provider token may be signed with: public-key ones.
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The provider's key set, as `jwks_uri` serves it. A key the crate cannot
/// read (another key type, an encryption algorithm it does not know) is
/// left out rather than failing the whole set: it could not check a
/// signature anyway, and the provider's other keys still can.
#[derive(Debug, Clone, Default)]
pub(super) struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl<'de> Deserialize<'de> for JwkSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(JwkSet {
            keys: raw
                .keys
                .into_iter()
                .filter_map(|key| serde_json::from_value(key).ok())
                .collect(),
        })
    }
}

/// A token whose header is decoded, its signature not yet checked.
#[derive(Debug)]
pub(super) struct Unverified {
    header: Header,
    token: String,
}

/// Whether `token` has the shape of a compact JWS (three base64url parts),
/// which tells provider tokens from the hub's own `syt_` tokens.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("ey")
}

/// Split `token` and decode its header without trusting it; an algorithm
/// other than [`ACCEPTED`] ones (`none`, HMAC) is refused here.
pub(super) fn parse(token: &str) -> Result<Unverified, Error> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Error::Malformed("token too large"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [encoded_header, _, _] = parts[..] else {
        return Err(Error::Malformed("not three dot-separated parts"));
    };
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        // The crate knows no `none`: name the algorithm the token asked for.
        ErrorKind::Json(_) => match header_alg(encoded_header) {
            Some(alg) if alg.parse::<Algorithm>().is_err() => Error::Algorithm(alg),
            _ => Error::Malformed("header is not a JOSE header"),
        },
        _ => Error::Malformed("header is not base64url"),
    })?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(Error::Algorithm(format!("{:?}", header.alg)));
    }
    Ok(Unverified {
        header,
        token: token.to_owned(),
    })
}

/// The `alg` a header names, for a header the crate could not read.
fn header_alg(encoded: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct AlgOnly {
        alg: String,
    }
    let json = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    Some(serde_json::from_slice::<AlgOnly>(&json).ok()?.alg)
}

/// The algorithm a JWK's `alg` names, if it is a signature algorithm.
fn key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The key `jwk` is for checking `alg` signatures, if it is one: a
/// signing key, of the algorithm it names (if it names one), of the key
/// type and curve `alg` needs. Never an HMAC key.
fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Option<DecodingKey> {
    let common = &jwk.common;
    if common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    if common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return None;
    }
    if let Some(named) = common.key_algorithm
        && key_algorithm(named) != Some(alg)
    {
        return None;
    }
    match (&jwk.algorithm, alg) {
        (
            AlgorithmParameters::RSA(rsa),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => {
            // ring refuses leading zero bytes, which some providers send.
            let n = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
            let e = URL_SAFE_NO_PAD.decode(&rsa.e).ok()?;
            Some(DecodingKey::from_rsa_raw_components(
                strip_zeros(&n),
                strip_zeros(&e),
            ))
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256)
            if ec.curve == EllipticCurve::P256 =>
        {
            DecodingKey::from_ec_components(&ec.x, &ec.y).ok()
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384)
            if ec.curve == EllipticCurve::P384 =>
        {
            DecodingKey::from_ec_components(&ec.x, &ec.y).ok()
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA)
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            DecodingKey::from_ed_components(&okp.x).ok()
        }
        _ => None,
    }
}

impl Unverified {
    /// The payload once a key of `keys` has checked the signature.
    /// [`Error::UnknownKey`] says no key of the set could check it (the
    /// provider may have rotated its keys: fetch them again and retry).
    pub(super) fn verify(self, keys: &JwkSet) -> Result<Value, Error> {
        let alg = self.header.alg;
        let kid = self.header.kid.as_deref();
        let mut candidates = keys
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
            .filter_map(|k| decoding_key(k, alg))
            .peekable();
        if candidates.peek().is_none() {
            return Err(Error::UnknownKey(kid.unwrap_or_default().to_owned()));
        }
        // Only the signature: the claims are checked by `check_claims`
        // against the `now` passed in, not the crate's reading of the clock.
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(&self.token, &key, &validation) {
                Ok(data) => return Ok(Value::Object(data.claims)),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => {
                    return Err(match e.kind() {
                        ErrorKind::Base64(_) => Error::Malformed("a part is not base64url"),
                        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                            Error::Malformed("payload is not a JSON object")
                        }
                        _ => Error::Signature,
                    });
                }
            }
        }
        Err(Error::Signature)
    }
}

/// What a verified token must say to be accepted.
#[derive(Debug, Clone)]
pub(super) struct Expected<'a> {
    pub issuer: &'a str,
    /// The token's audience must include one of these client ids.
    pub audiences: &'a [&'a str],
    /// The nonce the login sent, for ID tokens from the browser flow.
    pub nonce: Option<&'a str>,
    pub now: u64,
}

/// The signed-in user, from checked claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `preferred_username`, else `email`, else `sub`.
    pub user: String,
    pub groups: Vec<String>,
    pub expires_at: u64,
}

/// Check iss, aud, exp, nbf and nonce of a verified payload and read the
/// user and the groups claim named `groups_claim`.
pub(super) fn check_claims(
    payload: &Value,
    expected: &Expected<'_>,
    groups_claim: &str,
) -> Result<Identity, Error> {
    let text = |name: &str| payload.get(name).and_then(Value::as_str);
    let number = |name: &str| payload.get(name).and_then(Value::as_u64);
    let issuer = text("iss").unwrap_or_default();
    if issuer != expected.issuer {
        return Err(Error::WrongIssuer {
            got: issuer.to_owned(),
            want: expected.issuer.to_owned(),
        });
    }
    let audiences: Vec<&str> = match payload.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|a| expected.audiences.contains(a)) {
        return Err(Error::Audience(audiences.join(",")));
    }
    // OpenID Connect Core 3.1.3.7: a token for several audiences names the
    // party it was issued to in azp, which must then be one of ours.
    if audiences.len() > 1 && !text("azp").is_some_and(|azp| expected.audiences.contains(&azp)) {
        return Err(Error::Audience(audiences.join(",")));
    }
    let expires_at = number("exp").ok_or(Error::Malformed("no exp claim"))?;
    if expires_at.saturating_add(LEEWAY_SECS) <= expected.now {
        return Err(Error::Expired(expires_at));
    }
    if number("nbf").is_some_and(|nbf| nbf > expected.now.saturating_add(LEEWAY_SECS)) {
        return Err(Error::NotYetValid);
    }
    if expected
        .nonce
        .is_some_and(|nonce| text("nonce") != Some(nonce))
    {
        return Err(Error::Nonce);
    }
    let user = text("preferred_username")
        .or_else(|| text("email"))
        .or_else(|| text("sub"))
        .filter(|u| !u.is_empty())
        .ok_or(Error::Malformed("no sub claim"))?
        .to_owned();
    let groups = match payload.get(groups_claim) {
        Some(Value::Array(g)) => g
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(g)) => vec![g.clone()],
        _ => Vec::new(),
    };
    Ok(Identity {
        user,
        groups,
        expires_at,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
        RsaPublicKeyComponents,
    };

    /// A compact JWS of `header` and `claims`, signed by `sign`: tokens
    /// are built by hand (not by the crate under test), so any header,
    /// however hostile, can be tried.
    fn compact(header: &Value, claims: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn set(keys: Vec<Value>) -> JwkSet {
        serde_json::from_value(serde_json::json!({ "keys": keys })).unwrap()
    }

    /// A P-256 key that signs test tokens, and its JWK.
    pub(crate) struct TestKey {
        pair: EcdsaKeyPair,
        pub(crate) kid: String,
    }

    impl TestKey {
        pub(crate) fn new(kid: &str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Self {
                pair,
                kid: kid.to_owned(),
            }
        }

        /// The public key as the provider's `jwks_uri` lists it.
        pub(crate) fn jwk_json(&self) -> Value {
            let point = self.pair.public_key().as_ref();
            serde_json::json!({
                "kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            })
        }

        pub(crate) fn set(&self) -> JwkSet {
            set(vec![self.jwk_json()])
        }

        fn sign_raw(&self, header: &Value, claims: &str) -> String {
            compact(header, claims, |input| {
                let sig = self.pair.sign(&SystemRandom::new(), input).unwrap();
                sig.as_ref().to_vec()
            })
        }

        pub(crate) fn sign(&self, claims: &Value) -> String {
            let header = serde_json::json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
            self.sign_raw(&header, &claims.to_string())
        }
    }

    /// A 2048-bit RSA key (PKCS#1 DER) made for these tests only (`openssl genpkey`):
    /// ring verifies RSA but cannot generate RSA keys.
    fn rsa_pair() -> RsaKeyPair {
        RsaKeyPair::from_der(include_bytes!("testdata/rsa-2048-test-key.der")).unwrap()
    }

    /// The RSA key's JWK, naming `alg` if given, with a modulus that has
    /// a leading zero byte if `leading_zero` (as some providers send it).
    fn rsa_jwk(pair: &RsaKeyPair, alg: Option<&str>, leading_zero: bool) -> Value {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let mut n = public.n.clone();
        if leading_zero {
            n.insert(0, 0);
        }
        let mut jwk = serde_json::json!({"kty": "RSA", "kid": "r1",
            "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(&public.e)});
        if let Some(alg) = alg {
            jwk["alg"] = alg.into();
        }
        jwk
    }

    fn rsa_sign(pair: &RsaKeyPair, alg: &str, claims: &Value) -> String {
        let padding: &'static dyn ring::signature::RsaEncoding = match alg {
            "RS256" => &ring::signature::RSA_PKCS1_SHA256,
            "RS512" => &ring::signature::RSA_PKCS1_SHA512,
            "PS256" => &ring::signature::RSA_PSS_SHA256,
            _ => &ring::signature::RSA_PSS_SHA384,
        };
        let header = serde_json::json!({"alg": alg, "kid": "r1"});
        compact(&header, &claims.to_string(), |input| {
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(padding, &SystemRandom::new(), input, &mut sig)
                .unwrap();
            sig
        })
    }

    fn claims(now: u64) -> Value {
        serde_json::json!({
            "iss": "http://127.0.0.1:9/", "aud": "hub", "sub": "u1",
            "preferred_username": "alice", "groups": ["ops-admins"],
            "exp": now + 300, "iat": now, "nonce": "n1",
        })
    }

    const NOW: u64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "http://127.0.0.1:9/",
            audiences: &["hub"],
            nonce: Some("n1"),
            now: NOW,
        }
    }

    #[test]
    fn a_token_signed_by_the_provider_is_accepted_with_its_groups() {
        let key = TestKey::new("k1");
        let set = key.set();
        assert_eq!(set.keys.len(), 1);
        let token = key.sign(&claims(NOW));
        assert!(looks_like_jwt(&token));
        let payload = parse(&token).unwrap().verify(&set).unwrap();
        let id = check_claims(&payload, &expected(), "groups").unwrap();
        assert_eq!(id.user, "alice");
        assert_eq!(id.groups, vec!["ops-admins".to_owned()]);
    }

    #[test]
    fn another_key_a_changed_payload_or_alg_none_is_refused() {
        let key = TestKey::new("k1");
        let set = key.set();
        // Same kid, other key: the signature does not check.
        let forged = TestKey::new("k1").sign(&claims(NOW));
        assert!(matches!(
            parse(&forged).unwrap().verify(&set),
            Err(Error::Signature)
        ));
        // Unknown kid: the caller refreshes the keys.
        let other = TestKey::new("k2").sign(&claims(NOW));
        assert!(matches!(
            parse(&other).unwrap().verify(&set),
            Err(Error::UnknownKey(k)) if k == "k2"
        ));
        // A payload swapped under a valid signature.
        let token = key.sign(&claims(NOW));
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut raised = claims(NOW);
        raised["groups"] = serde_json::json!(["everyone-admins"]);
        let swapped = URL_SAFE_NO_PAD.encode(raised.to_string());
        parts[1] = &swapped;
        assert!(matches!(
            parse(&parts.join(".")).unwrap().verify(&set),
            Err(Error::Signature)
        ));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims(NOW).to_string())
        );
        assert!(matches!(parse(&none), Err(Error::Algorithm(a)) if a == "none"));
        assert!(matches!(parse("a.b"), Err(Error::Malformed(_))));
        assert!(matches!(parse("a.b.c.d"), Err(Error::Malformed(_))));
        // A signed payload that is not a claims object.
        let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
        assert!(matches!(
            parse(&key.sign_raw(&header, "[1]")).unwrap().verify(&set),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn hmac_is_refused_even_with_the_public_key_as_secret_or_an_oct_key_published() {
        // The classic confusion: HS256 keyed with what the verifier
        // holds as the public key, here the JWK's `x`.
        let key = TestKey::new("k1");
        let x = URL_SAFE_NO_PAD
            .decode(key.jwk_json()["x"].as_str().unwrap())
            .unwrap();
        let hmac = |secret: &[u8]| {
            let header = serde_json::json!({"alg": "HS256", "kid": "k1"});
            compact(&header, &claims(NOW).to_string(), |input| {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
                ring::hmac::sign(&key, input).as_ref().to_vec()
            })
        };
        assert!(matches!(parse(&hmac(&x)), Err(Error::Algorithm(a)) if a == "HS256"));
        // Even a key set that publishes a shared secret under the kid.
        let secret = b"published-shared-secret-0123456789";
        let oct = serde_json::json!({"kty": "oct", "kid": "k1",
            "k": URL_SAFE_NO_PAD.encode(secret)});
        let with_oct = set(vec![oct.clone(), key.jwk_json()]);
        assert_eq!(with_oct.keys.len(), 2);
        assert!(matches!(parse(&hmac(secret)), Err(Error::Algorithm(_))));
        // The oct key is never a candidate for a public-key algorithm.
        let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let token = key.sign_raw(&header, &claims(NOW).to_string());
        assert!(matches!(
            parse(&token).unwrap().verify(&set(vec![oct])),
            Err(Error::UnknownKey(_))
        ));
        assert!(parse(&token).unwrap().verify(&with_oct).is_ok());
    }

    #[test]
    fn rsa_and_ed25519_tokens_are_checked_with_the_algorithm_the_key_names() {
        let pair = rsa_pair();
        let good = claims(NOW);
        // The key names RS256: an RS256 token is accepted, the same key's
        // PS256 or RS512 signature is not checked with it at all.
        let rs256 = set(vec![rsa_jwk(&pair, Some("RS256"), false)]);
        let payload = parse(&rsa_sign(&pair, "RS256", &good))
            .unwrap()
            .verify(&rs256)
            .unwrap();
        assert_eq!(payload["sub"], "u1");
        for alg in ["PS256", "RS512"] {
            assert!(matches!(
                parse(&rsa_sign(&pair, alg, &good)).unwrap().verify(&rs256),
                Err(Error::UnknownKey(k)) if k == "r1"
            ));
        }
        // A key naming no algorithm checks every RSA one, and a modulus
        // sent with a leading zero byte still works.
        let any = set(vec![rsa_jwk(&pair, None, true)]);
        for alg in ["RS256", "RS512", "PS256", "PS384"] {
            let token = rsa_sign(&pair, alg, &good);
            assert!(parse(&token).unwrap().verify(&any).is_ok(), "{alg}");
        }
        // An RSA signature with one byte changed, under the right kid.
        let token = rsa_sign(&pair, "RS256", &good);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[0] ^= 1;
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert!(matches!(
            parse(&forged).unwrap().verify(&rs256),
            Err(Error::Signature)
        ));

        // Ed25519: accepted by its OKP key; an RSA or EC key under the
        // same kid is no candidate for EdDSA.
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
            .unwrap();
        let ed_jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "e1",
            "x": URL_SAFE_NO_PAD.encode(ed.public_key().as_ref())});
        let header = serde_json::json!({"alg": "EdDSA", "kid": "e1"});
        let token = compact(&header, &good.to_string(), |input| {
            ed.sign(input).as_ref().to_vec()
        });
        assert!(parse(&token).unwrap().verify(&set(vec![ed_jwk])).is_ok());
        let mut rsa_as_e1 = rsa_jwk(&pair, None, false);
        rsa_as_e1["kid"] = "e1".into();
        assert!(matches!(
            parse(&token).unwrap().verify(&set(vec![rsa_as_e1])),
            Err(Error::UnknownKey(_))
        ));
    }

    #[test]
    fn the_header_cannot_pick_a_curve_or_use_the_key_lacks() {
        let key = TestKey::new("k1");
        let token = key.sign(&claims(NOW));
        let with = |change: &dyn Fn(&mut Value)| {
            let mut jwk = key.jwk_json();
            change(&mut jwk);
            parse(&token).unwrap().verify(&set(vec![jwk]))
        };
        assert!(with(&|_| ()).is_ok());
        // Without `alg`, the curve decides: a P-256 key checks ES256 only.
        assert!(
            with(&|j| {
                j.as_object_mut().unwrap().remove("alg");
            })
            .is_ok()
        );
        let es384 = key.sign_raw(
            &serde_json::json!({"alg": "ES384", "kid": "k1"}),
            &claims(NOW).to_string(),
        );
        let mut no_alg = key.jwk_json();
        no_alg.as_object_mut().unwrap().remove("alg");
        assert!(matches!(
            parse(&es384).unwrap().verify(&set(vec![no_alg])),
            Err(Error::UnknownKey(_))
        ));
        // A key published for another curve, for encryption, or for
        // operations other than verifying is no candidate.
        for change in [
            &(|j: &mut Value| j["crv"] = "P-384".into()) as &dyn Fn(&mut Value),
            &|j| j["use"] = "enc".into(),
            &|j| j["key_ops"] = serde_json::json!(["encrypt"]),
            &|j| j["alg"] = "ES384".into(),
        ] {
            assert!(matches!(with(change), Err(Error::UnknownKey(_))));
        }
        assert!(with(&|j| j["key_ops"] = serde_json::json!(["verify"])).is_ok());
    }

    #[test]
    fn keys_the_crate_cannot_read_do_not_hide_the_others() {
        let key = TestKey::new("k1");
        let set = set(vec![
            serde_json::json!({"kty": "RSA", "kid": "x", "use": "enc", "alg": "RSA-OAEP-384",
                "n": "AQAB", "e": "AQAB"}),
            serde_json::json!({"kty": "EC", "kid": "y", "crv": "secp256k1", "x": "AA", "y": "AA"}),
            serde_json::json!({"kty": "future", "kid": "z"}),
            key.jwk_json(),
        ]);
        assert_eq!(set.keys.len(), 1);
        assert!(parse(&key.sign(&claims(NOW))).unwrap().verify(&set).is_ok());
    }

    #[test]
    fn issuer_audience_expiry_and_nonce_are_checked() {
        let good = claims(NOW);
        let change = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            check_claims(&c, &expected(), "groups").unwrap_err()
        };
        assert!(matches!(
            change("iss", "https://evil/".into()),
            Error::WrongIssuer { .. }
        ));
        assert!(matches!(change("aud", "other".into()), Error::Audience(_)));
        assert!(matches!(
            change("exp", (NOW - LEEWAY_SECS - 1).into()),
            Error::Expired(_)
        ));
        assert!(matches!(change("nonce", "n2".into()), Error::Nonce));
        assert!(matches!(
            change("nbf", (NOW + 3600).into()),
            Error::NotYetValid
        ));
        // An audience list with the client in it, and within the leeway.
        let mut list = good.clone();
        list["aud"] = serde_json::json!(["other", "hub"]);
        list["exp"] = (NOW - 10).into();
        // Several audiences: azp must name this hub's client.
        assert!(matches!(
            check_claims(&list, &expected(), "groups"),
            Err(Error::Audience(_))
        ));
        list["azp"] = "other".into();
        assert!(check_claims(&list, &expected(), "groups").is_err());
        list["azp"] = "hub".into();
        assert!(check_claims(&list, &expected(), "groups").is_ok());
        // Bearer tokens carry no nonce and none is expected.
        let mut bearer = expected();
        bearer.nonce = None;
        let mut no_nonce = good.clone();
        no_nonce.as_object_mut().unwrap().remove("nonce");
        assert!(check_claims(&no_nonce, &bearer, "groups").is_ok());
        assert!(matches!(
            check_claims(&no_nonce, &expected(), "groups"),
            Err(Error::Nonce)
        ));
    }

    #[test]
    fn the_user_falls_back_to_email_then_sub_and_groups_may_be_one_string() {
        let mut c = claims(NOW);
        c.as_object_mut().unwrap().remove("preferred_username");
        c["roles"] = "devs".into();
        let id = check_claims(&c, &expected(), "roles").unwrap();
        assert_eq!((id.user.as_str(), id.groups), ("u1", vec!["devs".into()]));
        c["email"] = "a@example.com".into();
        assert_eq!(
            check_claims(&c, &expected(), "groups").unwrap().user,
            "a@example.com"
        );
    }
}
