//! Sprig's encodings, hashes and regular expressions (`b64enc`, `sha256sum`,
//! `adler32sum`, `regexFind`, ...; Go's RE2 syntax through the regex crate).

use super::*;

pub(super) fn add(m: &mut FuncMap) {
    use Ty::*;
    // Encoding and hashes.
    m.insert("b64enc", &[Str], None, |_, a| {
        Ok(base64::engine::general_purpose::STANDARD
            .encode(s(&a[0]))
            .into())
    });
    m.insert("b64dec", &[Str], None, |_, a| {
        Ok(
            match base64::engine::general_purpose::STANDARD.decode(s(&a[0])) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned().into(),
                Err(e) => go_b64_error(&e).into(),
            },
        )
    });
    m.insert("b32enc", &[Str], None, |_, a| {
        Ok(base32_encode(s(&a[0]).as_bytes()).into())
    });
    m.insert("b32dec", &[Str], None, |_, a| {
        Ok(match base32_decode(s(&a[0])) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned().into(),
            Err(off) => format!("illegal base32 data at input byte {off}").into(),
        })
    });
    m.insert("sha256sum", &[Str], None, |_, a| {
        Ok(hex(&sha2::Sha256::digest(s(&a[0]).as_bytes())).into())
    });
    m.insert("sha1sum", &[Str], None, |_, a| {
        Ok(hex(&sha1::Sha1::digest(s(&a[0]).as_bytes())).into())
    });
    m.insert("adler32sum", &[Str], None, |_, a| {
        Ok(adler32(s(&a[0]).as_bytes()).to_string().into())
    });
    // Regular expressions (Go's RE2 syntax; Rust's regex crate is RE2-compatible).
    m.insert("regexMatch", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(
            regex::Regex::new(s(&a[0])).is_ok_and(|r| r.is_match(s(&a[1]))),
        ))
    });
    m.insert("mustRegexMatch", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(re(s(&a[0]))?.is_match(s(&a[1]))))
    });
    m.insert("regexFind", &[Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .find(s(&a[1]))
            .map(|x| x.as_str())
            .unwrap_or("")
            .into())
    });
    m.insert("mustRegexFind", &[Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .find(s(&a[1]))
            .map(|x| x.as_str())
            .unwrap_or("")
            .into())
    });
    m.insert("regexFindAll", &[Str, Str, Int], None, regex_find_all);
    m.insert("mustRegexFindAll", &[Str, Str, Int], None, regex_find_all);
    m.insert("regexReplaceAll", &[Str, Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .replace_all(s(&a[1]), s(&a[2]))
            .into_owned()
            .into())
    });
    m.insert("mustRegexReplaceAll", &[Str, Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .replace_all(s(&a[1]), s(&a[2]))
            .into_owned()
            .into())
    });
    m.insert("regexReplaceAllLiteral", &[Str, Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .replace_all(s(&a[1]), regex::NoExpand(s(&a[2])))
            .into_owned()
            .into())
    });
    m.insert("regexSplit", &[Str, Str, Int], None, |_, a| {
        let r = re(s(&a[0]))?;
        let n = i(&a[2]);
        let parts: Vec<Value> = if n < 0 {
            r.split(s(&a[1])).map(Value::str).collect()
        } else if n == 0 {
            Vec::new()
        } else {
            r.splitn(s(&a[1]), n as usize).map(Value::str).collect()
        };
        Ok(Value::list(parts))
    });
    m.insert("regexQuoteMeta", &[Str], None, |_, a| {
        Ok(regex::escape(s(&a[0])).into())
    });
}

pub(super) fn regex_find_all(_: &mut Exec<'_>, a: Args) -> Res {
    let r = re(s(&a[0]))?;
    let n = i(&a[2]);
    let it = r.find_iter(s(&a[1])).map(|x| Value::str(x.as_str()));
    Ok(Value::list(if n < 0 {
        it.collect()
    } else {
        it.take(n as usize).collect()
    }))
}

pub(super) fn re(p: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("error parsing regexp: {e}"))
}

pub(super) fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

pub(super) fn base32_encode(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for k in 0..8 {
            if k < chars {
                out.push(A[((n >> (35 - k * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `base32.StdEncoding.DecodeString`: the bytes, or the offset Go
/// reports as corrupt (counted after `\r` and `\n` are dropped, as Go does).
pub(super) fn base32_decode(text: &str) -> Result<Vec<u8>, usize> {
    let src: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'\r' && *c != b'\n')
        .collect();
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    };
    let olen = src.len();
    let mut out = Vec::with_capacity(olen * 5 / 8);
    let mut i = 0;
    let mut end = false;
    while i < olen && !end {
        let mut q = [0u8; 8];
        let mut qlen = 8;
        let mut j = 0;
        while j < 8 {
            if i == olen {
                // Input ends inside a quantum: padding is missing.
                return Err(olen - j);
            }
            let c = src[i];
            i += 1;
            let left = olen - i;
            if c == b'=' && j >= 2 && left < 8 {
                if left + j < 7 {
                    return Err(olen);
                }
                for k in 0..7 - j {
                    if left > k && src[i + k] != b'=' {
                        return Err(i + k - 1);
                    }
                }
                qlen = j;
                end = true;
                if matches!(qlen, 1 | 3 | 6) {
                    return Err(i - 1);
                }
                break;
            }
            q[j] = value(c).ok_or(i - 1)?;
            j += 1;
        }
        let b = [
            q[0] << 3 | q[1] >> 2,
            q[1] << 6 | q[2] << 1 | q[3] >> 4,
            q[3] << 4 | q[4] >> 1,
            q[4] << 7 | q[5] << 2 | q[6] >> 3,
            q[6] << 5 | q[7],
        ];
        let n = match qlen {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            _ => 1,
        };
        out.extend_from_slice(&b[..n]);
    }
    Ok(out)
}

pub(super) fn go_b64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(off, _)
        | base64::DecodeError::InvalidLastSymbol(off, _) => {
            format!("illegal base64 data at input byte {off}")
        }
        _ => "illegal base64 data at input byte 0".into(),
    }
}
