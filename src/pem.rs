//! Clean PEM in and out.
//!
//! Output is always LF line endings, 64-column base64 lines, no trailing spaces and a final
//! newline: what ACM, the AWS CLI and OpenVPN accept without surprises. Input is tolerant:
//! CRLF, text before and between blocks (openssl's `-text` dump), several blocks.
//!
//! Private keys go through [`encode_secret`] and [`decode_secret`] instead: the same format,
//! but every copy of the key (DER, base64 text) is made once, at its final size, in memory that
//! is zeroized on drop, and the base64 is constant-time (RFC 7468 encoder of the `pkcs8`
//! stack). The `pem` crate used for certificates and CRLs leaves intermediate copies behind.

use std::fmt;

use pkcs8::der::pem as rfc7468;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Encodes one PEM block with the given label.
pub fn encode(label: &str, der: &[u8]) -> String {
    let block = pem::Pem::new(label, der.to_vec());
    pem::encode_config(
        &block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Encodes several blocks with the same label, concatenated.
pub fn encode_many<'a>(label: &str, ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    ders.into_iter().map(|d| encode(label, d)).collect()
}

/// One decoded PEM block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The label, e.g. `CERTIFICATE`.
    pub label: String,
    /// The DER contents.
    pub der: Vec<u8>,
}

/// Decodes every PEM block in `text`. `source` names the input in errors.
pub fn decode_all(text: &[u8], source: &str) -> Result<Vec<Block>> {
    let blocks =
        pem::parse_many(text).map_err(|e| Error::input(source, format!("malformed PEM: {e}")))?;
    Ok(blocks
        .into_iter()
        .map(|p| Block {
            label: p.tag().to_string(),
            der: p.into_contents(),
        })
        .collect())
}

/// Encodes a secret (a private key) as one PEM block: the same text as [`encode`], written
/// straight into zeroizing memory of its final size.
pub fn encode_secret(label: &str, der: &[u8]) -> Result<Zeroizing<String>> {
    let err = |e: rfc7468::Error| Error::Crypto(format!("PEM encoding of a {label}: {e}"));
    let len = rfc7468::encoded_len(label, rfc7468::LineEnding::LF, der).map_err(err)?;
    let mut buf = Zeroizing::new(vec![0u8; len]);
    let n = rfc7468::encode(label, rfc7468::LineEnding::LF, der, &mut buf)
        .map_err(err)?
        .len();
    buf.truncate(n);
    match String::from_utf8(std::mem::take(&mut *buf)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(Error::Crypto(format!(
                "PEM encoding of a {label}: not ASCII"
            )))
        }
    }
}

/// One decoded PEM block of a secret: the DER is zeroized on drop; `Debug` shows the label only.
pub struct SecretBlock {
    /// The label, e.g. `PRIVATE KEY`.
    pub label: String,
    /// The RFC 1421 headers before the base64 (`Proc-Type`, `DEK-Info` of a traditional
    /// encrypted OpenSSL key), name and value trimmed, in order. Not secret: the `DEK-Info`
    /// IV is public.
    pub headers: Vec<(String, String)>,
    /// The DER contents.
    pub der: Zeroizing<Vec<u8>>,
}

impl SecretBlock {
    /// The value of the header `name`, if the block has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for SecretBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBlock")
            .field("label", &self.label)
            .field("der", &"<redacted>")
            .finish()
    }
}

/// [`decode_all`] for text that holds a secret (a private key): the same grammar (text around
/// blocks, CRLF, RFC 1421 headers such as `Proc-Type` skipped), but the base64 and the DER are
/// only ever copied into zeroizing buffers. Errors never quote the input.
pub fn decode_secret(text: &[u8], source: &str) -> Result<Vec<SecretBlock>> {
    let malformed = |why: &str| Error::input(source, format!("malformed PEM: {why}"));
    let mut blocks = Vec::new();
    let mut rest = text;
    // `-----BEGIN L-----` ws* [headers \n\n] data `-----END L-----` ws*, as the `pem` crate.
    while let Some((_, after_marker)) = split_at_marker(rest, b"-----BEGIN ") {
        let Some((begin, after)) = split_at_marker(after_marker, b"-----") else {
            break;
        };
        let Some((payload, after)) = split_at_marker(after.trim_ascii_start(), b"-----END ") else {
            break;
        };
        let Some((end, after)) = split_at_marker(after, b"-----") else {
            break;
        };
        rest = after.trim_ascii_start();

        let (label, end) = match (std::str::from_utf8(begin), std::str::from_utf8(end)) {
            (Ok(b), Ok(e)) => (b, e),
            _ => return Err(malformed("a label is not UTF-8")),
        };
        if label.is_empty() || end.is_empty() {
            return Err(malformed("a BEGIN or END line has no label"));
        }
        if label != end {
            return Err(malformed(&format!("BEGIN {label} ends with END {end}")));
        }
        let (headers, data) = split_at_marker(payload, b"\n\n")
            .or_else(|| split_at_marker(payload, b"\r\n\r\n"))
            .unwrap_or((&[], payload));
        let headers: Vec<(String, String)> = match std::str::from_utf8(headers) {
            Ok(h) => h
                .lines()
                .map(|l| {
                    l.split_once(':')
                        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                })
                .collect::<Option<_>>(),
            Err(_) => None,
        }
        .ok_or_else(|| malformed(&format!("the {label} block has a bad header line")))?;
        let der = decode_base64_secret(data)
            .ok_or_else(|| malformed(&format!("the {label} block is not valid base64")))?;
        blocks.push(SecretBlock {
            label: label.to_owned(),
            headers,
            der,
        });
    }
    Ok(blocks)
}

/// (before, after) the first occurrence of `marker` in `input`.
fn split_at_marker<'a>(input: &'a [u8], marker: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = input.windows(marker.len()).position(|w| w == marker)?;
    Some((&input[..at], &input[at + marker.len()..]))
}

/// The bytes of padded base64 `data` (whitespace anywhere ignored), decoded in constant time
/// through zeroizing buffers: the base64 without whitespace, rewrapped as the RFC 7468 strict
/// PEM the decoder reads, then the DER. Each is allocated at its final size, never regrown.
fn decode_base64_secret(data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    const PRE: &[u8] = b"-----BEGIN X-----\n";
    const POST: &[u8] = b"-----END X-----\n";
    let chars = data.iter().filter(|b| !b.is_ascii_whitespace()).count();
    if chars == 0 {
        return Some(Zeroizing::new(Vec::new()));
    }
    let lines = chars.div_ceil(64);
    let mut strict = Zeroizing::new(Vec::with_capacity(PRE.len() + chars + lines + POST.len()));
    strict.extend_from_slice(PRE);
    for (i, b) in data.iter().filter(|b| !b.is_ascii_whitespace()).enumerate() {
        strict.push(*b);
        if i % 64 == 63 || i + 1 == chars {
            strict.push(b'\n');
        }
    }
    strict.extend_from_slice(POST);
    let mut der = Zeroizing::new(vec![0u8; chars / 4 * 3]);
    let n = rfc7468::decode(&strict, &mut der).ok()?.1.len();
    der.truncate(n);
    Some(der)
}

/// Reads certificates from PEM text (or a single DER certificate), in file order.
pub fn decode_certificates(data: &[u8], source: &str) -> Result<Vec<Vec<u8>>> {
    if data.first() == Some(&0x30) {
        return Ok(vec![data.to_vec()]);
    }
    let certs: Vec<Vec<u8>> = decode_all(data, source)?
        .into_iter()
        .filter(|b| {
            b.label == "CERTIFICATE"
                || b.label == "X509 CERTIFICATE"
                || b.label == "TRUSTED CERTIFICATE"
        })
        .map(|b| b.der)
        .collect();
    if certs.is_empty() {
        return Err(Error::BadCertificate {
            source_name: source.to_string(),
            reason: "no PEM CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_clean() {
        let der = vec![0x30u8; 200];
        let s = encode("CERTIFICATE", &der);
        assert!(!s.contains('\r'));
        assert!(s.ends_with("-----END CERTIFICATE-----\n"));
        for line in s.lines() {
            assert!(line.len() <= 64 || line.starts_with("-----"), "{line}");
            assert_eq!(line, line.trim_end());
        }
    }

    /// `encode_secret` writes exactly what `encode` (the `pem` crate) writes, for every length
    /// around the 48-byte line and the 3-byte base64 group boundaries.
    #[test]
    fn secret_encoding_is_the_same_text() {
        for n in 1..=300usize {
            let der: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            let secret = encode_secret("PRIVATE KEY", &der).expect("encodes");
            assert_eq!(*secret, encode("PRIVATE KEY", &der), "{n} bytes");
        }
    }

    /// `decode_secret` reads what `decode_all` (the `pem` crate) reads, block for block, and
    /// refuses what it refuses.
    ///
    /// Fails when: RFC 1421 headers were not split off the data (seen: case 6, the `Proc-Type`
    /// key, refused as bad base64 while the `pem` crate read it).
    #[test]
    fn secret_decoding_agrees_with_the_pem_crate() {
        let key: Vec<u8> = (0..1217usize).map(|i| (i * 13) as u8).collect();
        let clean = encode("PRIVATE KEY", &key);
        let other = encode("CERTIFICATE", &[0x30, 0x03, 1, 2, 3]);
        let b64: String = clean.lines().filter(|l| !l.starts_with("-----")).collect();
        let cases = [
            clean.clone(),
            clean.replace('\n', "\r\n"),
            format!("Private-Key: (2048 bit)\n  junk\n{clean}"),
            format!("{clean}{other}"),
            format!("{other}\ntext between\n{clean}trailing\n"),
            // (The labels are built, so that no key-looking block sits in the source: the
            // bytes are synthetic.)
            format!(
                "-----BEGIN {pk}-----\n{b64}\n-----END {pk}-----\n",
                pk = "PRIVATE KEY"
            ),
            format!(
                "-----BEGIN {rk}-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{b64}\n-----END {rk}-----\n",
                rk = "RSA PRIVATE KEY"
            ),
            String::new(),
            "no PEM here".into(),
            "-----BEGIN X-----\n-----END X-----\n".into(),
            // Refused by both: mismatched labels, bad base64, missing padding, a header
            // without a colon, an empty label.
            clean.replace("END PRIVATE KEY", "END PUBLIC KEY"),
            clean.replacen('M', "*", 1),
            "-----BEGIN X-----\nAAA\n-----END X-----\n".into(),
            "-----BEGIN X-----\nnot a header\n\nAAAA\n-----END X-----\n".into(),
            "-----BEGIN -----\nAAAA\n-----END -----\n".into(),
        ];
        for (i, text) in cases.iter().enumerate() {
            let want = decode_all(text.as_bytes(), "t");
            let got = decode_secret(text.as_bytes(), "t");
            match (want, got) {
                (Ok(w), Ok(g)) => {
                    let w: Vec<(&str, &[u8])> =
                        w.iter().map(|b| (b.label.as_str(), &b.der[..])).collect();
                    let g: Vec<(&str, &[u8])> =
                        g.iter().map(|b| (b.label.as_str(), &b.der[..])).collect();
                    assert_eq!(g, w, "case {i}");
                }
                (Err(_), Err(e)) => {
                    assert!(!e.to_string().contains("MII"), "case {i}: {e}");
                }
                (w, g) => panic!(
                    "case {i}: pem crate {:?}, decode_secret {:?}",
                    w.map(|b| b.len()),
                    g.map(|b| b.len())
                ),
            }
        }
        let one = decode_secret(clean.as_bytes(), "t").expect("decodes");
        assert_eq!(*one[0].der, key);
        assert!(!format!("{one:?}").contains(&format!("{:?}", &key[..4])));
    }

    #[test]
    fn tolerant_input() {
        let s = format!(
            "Certificate:\n  junk\r\n{}",
            encode("CERTIFICATE", &[0x30, 0x00]).replace('\n', "\r\n")
        );
        let certs = decode_certificates(s.as_bytes(), "t").expect("decodes");
        assert_eq!(certs, vec![vec![0x30, 0x00]]);
    }
}
