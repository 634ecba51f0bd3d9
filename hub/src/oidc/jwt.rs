//! JSON Web Tokens as OpenID providers sign them: split a compact JWS,
//! check its signature against the provider's published keys (JWKS), and
//! check the claims the hub relies on. No I/O and no clock: the keys and
//! `now` are passed in, so every refusal is unit-tested.
//!
//! Signatures are checked with ring (already the hub's crypto library):
//! RS256/384/512, PS256/384/512, ES256/384 and EdDSA. `none` and HMAC are
//! refused: the hub trusts only the provider's public keys.

use super::Error;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// Seconds of clock difference tolerated between hub and provider.
pub(super) const LEEWAY_SECS: u64 = 60;

/// Longest token looked at; real ID tokens are a few KiB.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// One public key of the provider's JWKS (RFC 7517).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

/// The provider's key set, as `jwks_uri` serves it.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// A token split and decoded, its signature not yet checked.
#[derive(Debug)]
pub(super) struct Unverified {
    alg: String,
    kid: Option<String>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    payload: Value,
}

/// Whether `token` has the shape of a compact JWS (three base64url parts),
/// which tells provider tokens from the hub's own `syt_` tokens.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("ey")
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| Error::Malformed(what))
}

/// Split and decode `token` without trusting it.
pub(super) fn parse(token: &str) -> Result<Unverified, Error> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Error::Malformed("token too large"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed("not three dot-separated parts"));
    };
    let header: Header = serde_json::from_slice(&b64(header, "header is not base64url")?)
        .map_err(|_| Error::Malformed("header is not a JOSE header"))?;
    let payload_json: Value = serde_json::from_slice(&b64(payload, "payload is not base64url")?)
        .map_err(|_| Error::Malformed("payload is not JSON"))?;
    if !payload_json.is_object() {
        return Err(Error::Malformed("payload is not a JSON object"));
    }
    let signing_len = token.len() - signature.len() - 1;
    Ok(Unverified {
        alg: header.alg,
        kid: header.kid,
        signing_input: token.as_bytes()[..signing_len].to_vec(),
        signature: b64(signature, "signature is not base64url")?,
        payload: payload_json,
    })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Check the signature with one key, if the key can check this algorithm.
fn verify_with(key: &Jwk, alg: &str, input: &[u8], sig: &[u8]) -> Option<bool> {
    if key.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    if key.alg.as_deref().is_some_and(|a| a != alg) {
        return None;
    }
    let field = |f: &Option<String>| f.as_deref().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    let ok = match (alg, key.kty.as_str()) {
        ("RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512", "RSA") => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            let (n, e) = (field(&key.n)?, field(&key.e)?);
            let components = RsaPublicKeyComponents {
                n: strip_zeros(&n),
                e: strip_zeros(&e),
            };
            components.verify(params, input, sig).is_ok()
        }
        ("ES256" | "ES384", "EC") => {
            let (params, crv, len): (&'static signature::EcdsaVerificationAlgorithm, _, _) =
                match alg {
                    "ES256" => (&signature::ECDSA_P256_SHA256_FIXED, "P-256", 32),
                    _ => (&signature::ECDSA_P384_SHA384_FIXED, "P-384", 48),
                };
            if key.crv.as_deref() != Some(crv) {
                return None;
            }
            let (x, y) = (field(&key.x)?, field(&key.y)?);
            if x.len() != len || y.len() != len {
                return Some(false);
            }
            let point = [&[0x04][..], &x, &y].concat();
            UnparsedPublicKey::new(params, point)
                .verify(input, sig)
                .is_ok()
        }
        ("EdDSA", "OKP") => {
            if key.crv.as_deref() != Some("Ed25519") {
                return None;
            }
            UnparsedPublicKey::new(&signature::ED25519, field(&key.x)?)
                .verify(input, sig)
                .is_ok()
        }
        _ => return None,
    };
    Some(ok)
}

impl Unverified {
    /// The payload once a key of `keys` has checked the signature.
    /// [`Error::UnknownKey`] says no key of the set could check it (the
    /// provider may have rotated its keys: fetch them again and retry).
    pub(super) fn verify(self, keys: &JwkSet) -> Result<Value, Error> {
        const ALGS: &[&str] = &[
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ];
        if !ALGS.contains(&self.alg.as_str()) {
            return Err(Error::Algorithm(self.alg));
        }
        let mut candidates = keys
            .keys
            .iter()
            .filter(|k| self.kid.is_none() || k.kid == self.kid)
            .filter_map(|k| verify_with(k, &self.alg, &self.signing_input, &self.signature))
            .peekable();
        if candidates.peek().is_none() {
            return Err(Error::UnknownKey(self.kid.unwrap_or_default()));
        }
        if candidates.any(|ok| ok) {
            Ok(self.payload)
        } else {
            Err(Error::Signature)
        }
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
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

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

        pub(crate) fn jwk(&self) -> Jwk {
            let point = self.pair.public_key().as_ref();
            Jwk {
                kty: "EC".into(),
                kid: Some(self.kid.clone()),
                use_: Some("sig".into()),
                alg: Some("ES256".into()),
                n: None,
                e: None,
                crv: Some("P-256".into()),
                x: Some(URL_SAFE_NO_PAD.encode(&point[1..33])),
                y: Some(URL_SAFE_NO_PAD.encode(&point[33..65])),
            }
        }

        pub(crate) fn sign(&self, claims: &Value) -> String {
            let header = serde_json::json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
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
        let set = JwkSet {
            keys: vec![key.jwk()],
        };
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
        let set = JwkSet {
            keys: vec![key.jwk()],
        };
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
        assert!(matches!(
            parse(&none).unwrap().verify(&set),
            Err(Error::Algorithm(_))
        ));
        assert!(matches!(parse("a.b"), Err(Error::Malformed(_))));
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
