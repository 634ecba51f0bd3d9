//! Sprig's cryptographic functions. Deterministic ones (`derivePassword`,
//! `decryptAES`) equal Helm's output byte for byte; random ones draw from the
//! seeded generator of the call site, so a render of the same inputs is
//! byte-identical.

use super::*;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use hmac::Mac;

pub(super) fn add(m: &mut FuncMap) {
    use Ty::*;
    m.insert(
        "derivePassword",
        &[Int, Str, Str, Str, Str],
        None,
        |e, a| {
            e.charge(super::certs::cost::SCRYPT)?;
            Ok(derive_password(i(&a[0]) as u32, s(&a[1]), s(&a[2]), s(&a[3]), s(&a[4])).into())
        },
    );
    m.insert("decryptAES", &[Str, Str], None, |_, a| {
        decrypt_aes(s(&a[0]), s(&a[1])).map(Value::from)
    });
    m.insert("encryptAES", &[Str, Str], None, |e, a| {
        if s(&a[1]).is_empty() {
            return Ok(Value::str(""));
        }
        let mut iv = [0u8; 16];
        rng(e).fill(&mut iv);
        Ok(encrypt_aes(s(&a[0]), s(&a[1]).as_bytes(), iv).into())
    });
}

/// The 32-byte AES-256 key Sprig makes from a password: its bytes, cut or
/// filled with zeros.
fn aes_key(password: &str) -> aes::Aes256 {
    let mut key = [0u8; 32];
    let p = password.as_bytes();
    let n = p.len().min(32);
    key[..n].copy_from_slice(&p[..n]);
    aes::Aes256::new(&key.into())
}

/// Sprig's `encryptAES`: AES-256-CBC with PKCS#7 padding, the IV in front, base64.
pub(super) fn encrypt_aes(password: &str, plain: &[u8], iv: [u8; 16]) -> String {
    let cipher = aes_key(password);
    let pad = 16 - plain.len() % 16;
    let mut content = plain.to_vec();
    content.extend(std::iter::repeat_n(pad as u8, pad));
    let mut out = iv.to_vec();
    let mut prev = iv;
    for chunk in content.chunks(16) {
        let mut block = [0u8; 16];
        for k in 0..16 {
            block[k] = chunk[k] ^ prev[k];
        }
        let mut b = block.into();
        cipher.encrypt_block(&mut b);
        prev = b.into();
        out.extend_from_slice(&prev);
    }
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Sprig's `decryptAES`, including the failures Go reports as panics for
/// short or malformed input (the padding is not checked, as in Sprig).
pub(super) fn decrypt_aes(password: &str, crypt64: &str) -> Result<String, String> {
    if crypt64.is_empty() {
        return Ok(String::new());
    }
    let crypt = base64::engine::general_purpose::STANDARD
        .decode(crypt64)
        .map_err(|e| super::encoding::go_b64_error(&e))?;
    if crypt.len() < 16 {
        return Err(format!(
            "runtime error: slice bounds out of range [:16] with capacity {}",
            crypt.len()
        ));
    }
    let (iv, body) = crypt.split_at(16);
    if body.len() % 16 != 0 {
        return Err("crypto/cipher: input not full blocks".into());
    }
    let cipher = aes_key(password);
    let mut out = Vec::with_capacity(body.len());
    let mut prev: [u8; 16] = iv.try_into().unwrap_or([0; 16]);
    for chunk in body.chunks(16) {
        let mut b: [u8; 16] = chunk.try_into().unwrap_or([0; 16]);
        let mut block = b.into();
        cipher.decrypt_block(&mut block);
        let plain: [u8; 16] = block.into();
        for k in 0..16 {
            out.push(plain[k] ^ prev[k]);
        }
        std::mem::swap(&mut prev, &mut b);
    }
    let Some(&last) = out.last() else {
        return Err("runtime error: index out of range [-1]".into());
    };
    let keep = out.len() as i64 - i64::from(last);
    if keep < 0 {
        return Err(format!(
            "runtime error: slice bounds out of range [:{keep}]"
        ));
    }
    out.truncate(keep as usize);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Master Password's templates per password type, as Sprig uses them.
fn password_templates(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return None,
    })
}

/// The characters a template letter stands for.
fn template_chars(c: u8) -> &'static [u8] {
    match c {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

/// Sprig's `derivePassword`: the Master Password algorithm (scrypt key from
/// the password and user, HMAC-SHA256 seed from the site and counter).
pub(super) fn derive_password(
    counter: u32,
    kind: &str,
    password: &str,
    user: &str,
    site: &str,
) -> String {
    const SCOPE: &[u8] = b"com.lyndir.masterpassword";
    let Some(templates) = password_templates(kind) else {
        return format!("cannot find password template {kind}");
    };
    let mut salt = SCOPE.to_vec();
    salt.extend_from_slice(&(user.len() as u32).to_be_bytes());
    salt.extend_from_slice(user.as_bytes());
    let mut key = [0u8; 64];
    // N = 32768, r = 8, p = 2: about 32 MiB and a tenth of a second.
    let derived = scrypt::Params::new(15, 8, 2)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            scrypt::scrypt(password.as_bytes(), &salt, &p, &mut key).map_err(|e| e.to_string())
        });
    if let Err(e) = derived {
        return format!("failed to derive password: {e}");
    }
    let mut msg = SCOPE.to_vec();
    msg.extend_from_slice(&(site.len() as u32).to_be_bytes());
    msg.extend_from_slice(site.as_bytes());
    msg.extend_from_slice(&counter.to_be_bytes());
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key) else {
        return "failed to derive password: bad key".into();
    };
    mac.update(&msg);
    let seed = mac.finalize().into_bytes();
    let template = templates[usize::from(seed[0]) % templates.len()].as_bytes();
    template
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let chars = template_chars(*c);
            chars[usize::from(seed[k + 1]) % chars.len()] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_password_equals_helm() {
        // Outputs of Helm v4.2.3 for the same arguments.
        assert_eq!(
            derive_password(1, "long", "password", "user", "example.com"),
            "ZedaFaxcZaso9*"
        );
        assert_eq!(
            derive_password(3, "maximum", "pw", "üser", "site"),
            "J0-qu4To5vwaP$oWhj#V"
        );
        assert_eq!(
            derive_password(1, "nope", "pw", "u", "s"),
            "cannot find password template nope"
        );
    }

    #[test]
    fn aes_round_trips_and_fails_like_go() {
        let c = encrypt_aes("secretkey", b"hello", [7; 16]);
        assert_eq!(decrypt_aes("secretkey", &c).unwrap(), "hello");
        let long = encrypt_aes("k".repeat(40).as_str(), &[b'x'; 32], [1; 16]);
        assert_eq!(decrypt_aes(&"k".repeat(32), &long).unwrap(), "x".repeat(32));
        assert!(
            decrypt_aes("k", "aGVsbG8=")
                .unwrap_err()
                .contains("slice bounds")
        );
        assert!(
            decrypt_aes(
                "k",
                &base64::engine::general_purpose::STANDARD.encode([0u8; 20])
            )
            .unwrap_err()
            .contains("not full blocks")
        );
        assert!(
            decrypt_aes("k", "!!")
                .unwrap_err()
                .contains("illegal base64")
        );
    }
}
