//! PKCS#12 (RFC 7292) bundles: a certificate, its private key and the CA chain in one
//! password-protected file, as Windows, macOS Keychain and OpenVPN Connect import them.
//!
//! The algorithms are OpenSSL 3's defaults, so that `openssl pkcs12` reads the file without
//! `-legacy`: every bag is encrypted with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) and the
//! whole is authenticated with an HMAC-SHA-256 MAC whose key comes from the PKCS#12 KDF
//! (RFC 7292 appendix B). No RC2, no 3DES, no SHA-1.
//!
//! The DER is written by hand with the few TLV helpers below (the structure is small and
//! fixed); its correctness is proven by the tests, which read every bundle back with the
//! `openssl` CLI.

use aws_lc_rs::{digest, hmac};
use pkcs8::der::Encode;
use zeroize::Zeroizing;

use crate::secret::{Passphrase, SecretKeyDer};
use crate::{Error, Result};

/// Iterations for PBKDF2 (each bag) and for the MAC key derivation. Three derivations per
/// file stay below the 600,000-iteration total that .NET's PKCS#12 loader accepts by default,
/// while a brute-force guess still costs 100,000 iterations on every path (the MAC included,
/// which OpenSSL's default of 2,048 leaves as the cheap one).
pub const PKCS12_ITERATIONS: u32 = 100_000;

const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
const OID_SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const OID_X509_CERT: &str = "1.2.840.113549.1.9.22.1";
const OID_FRIENDLY_NAME: &str = "1.2.840.113549.1.9.20";
const OID_LOCAL_KEY_ID: &str = "1.2.840.113549.1.9.21";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";

/// What goes into a bundle.
pub struct Bundle<'a> {
    /// The friendly name shown by key stores (the user's name).
    pub friendly_name: &'a str,
    /// The end-entity certificate (DER).
    pub cert: &'a [u8],
    /// Its private key (PKCS#8 DER).
    pub key: &'a SecretKeyDer,
    /// The CA chain, issuer first (DER).
    pub chain: &'a [Vec<u8>],
}

/// Builds the PKCS#12 file (DER) protected by `pass`.
pub fn build(bundle: &Bundle<'_>, pass: &Passphrase) -> Result<Vec<u8>> {
    build_with_iterations(bundle, pass, PKCS12_ITERATIONS)
}

/// [`build`] with an explicit iteration count (tests use a small one).
pub fn build_with_iterations(
    bundle: &Bundle<'_>,
    pass: &Passphrase,
    iterations: u32,
) -> Result<Vec<u8>> {
    if iterations == 0 {
        return Err(Error::input("PKCS#12 iterations", "must be at least 1"));
    }
    // localKeyId links the key to its certificate: the SHA-256 of the certificate, as
    // OpenSSL does with SHA-1.
    let key_id = digest::digest(&digest::SHA256, bundle.cert);
    let leaf_attrs = set(&[
        attribute(OID_FRIENDLY_NAME, &bmp_string(bundle.friendly_name)?),
        attribute(OID_LOCAL_KEY_ID, &octet_string(key_id.as_ref())),
    ]);

    // The certificates: one bag for the leaf (with its attributes), one per CA.
    let mut cert_bags = vec![safe_bag(
        OID_CERT_BAG,
        &cert_bag(bundle.cert),
        Some(&leaf_attrs),
    )];
    for ca in bundle.chain {
        cert_bags.push(safe_bag(OID_CERT_BAG, &cert_bag(ca), None));
    }
    let cert_contents = seq(&cert_bags);
    let encrypted_certs = encrypt_data(&cert_contents, pass, iterations)?;

    // The key: a pkcs8ShroudedKeyBag (EncryptedPrivateKeyInfo, PBES2).
    let epki = encrypt_key(bundle.key, pass, iterations)?;
    let key_contents = seq(&[safe_bag(OID_SHROUDED_KEY_BAG, &epki, Some(&leaf_attrs))]);

    let auth_safe = seq(&[
        content_info(OID_ENCRYPTED_DATA, &encrypted_certs),
        content_info(OID_DATA, &octet_string(&key_contents)),
    ]);

    let mac_salt: [u8; 16] = crate::store::crypto::random()?;
    let mac_key = pkcs12_kdf_sha256(pass, &mac_salt, 3, iterations, 32)?;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &mac_key), &auth_safe);
    let mac_data = seq(&[
        seq(&[
            seq(&[oid(OID_SHA256)?, vec![0x05, 0x00]]),
            octet_string(tag.as_ref()),
        ]),
        octet_string(&mac_salt),
        integer(u64::from(iterations)),
    ]);

    Ok(seq(&[
        integer(3),
        content_info(OID_DATA, &octet_string(&auth_safe)),
        mac_data,
    ]))
}

/// EncryptedData { version 0, EncryptedContentInfo { data, PBES2, [0] IMPLICIT ciphertext } }.
fn encrypt_data(plain: &[u8], pass: &Passphrase, iterations: u32) -> Result<Vec<u8>> {
    let salt: [u8; 16] = crate::store::crypto::random()?;
    let iv: [u8; 16] = crate::store::crypto::random()?;
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(iterations, &salt, &iv)
        .map_err(|e| Error::Crypto(format!("PBES2 parameters: {e}")))?;
    let scheme = pkcs8::pkcs5::EncryptionScheme::Pbes2(params);
    let ciphertext = scheme
        .encrypt(pass.expose(), plain)
        .map_err(|e| Error::Crypto(format!("PKCS#12 encryption: {e}")))?;
    let alg = scheme
        .to_der()
        .map_err(|e| Error::Crypto(format!("PBES2 encoding: {e}")))?;
    Ok(seq(&[
        integer(0),
        seq(&[oid(OID_DATA)?, alg, tlv(0x80, &ciphertext)]),
    ]))
}

/// The key as EncryptedPrivateKeyInfo DER (PBES2, PBKDF2-HMAC-SHA-256, AES-256-CBC) of a
/// PKCS#8 v1 key (see [`SecretKeyDer::export_info`]).
fn encrypt_key(key: &SecretKeyDer, pass: &Passphrase, iterations: u32) -> Result<Vec<u8>> {
    let salt: [u8; 16] = crate::store::crypto::random()?;
    let iv: [u8; 16] = crate::store::crypto::random()?;
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(iterations, &salt, &iv)
        .map_err(|e| Error::Crypto(format!("PBES2 parameters: {e}")))?;
    let doc = key
        .export_info()?
        .encrypt_with_params(params, pass.expose())
        .map_err(|e| Error::Crypto(format!("PKCS#12 key encryption: {e}")))?;
    Ok(doc.as_bytes().to_vec())
}

/// The PKCS#12 key derivation function (RFC 7292 appendix B.2) with SHA-256 (u = 32, v = 64).
/// `id` 3 derives a MAC key. The password is a BMPString with its two-byte terminator.
fn pkcs12_kdf_sha256(
    pass: &Passphrase,
    salt: &[u8],
    id: u8,
    iterations: u32,
    out_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    const U: usize = 32;
    const V: usize = 64;
    // Every buffer that holds the password (the BMPString, I = the salt and the password each
    // repeated to a multiple of v bytes) is zeroizing and allocated at its final size, so that
    // no growing leaves a copy behind.
    let units = pass.expose_str().encode_utf16().count();
    let mut pw = Zeroizing::new(Vec::with_capacity(2 * units + 2));
    for unit in pass.expose_str().encode_utf16() {
        pw.extend_from_slice(&unit.to_be_bytes());
    }
    pw.extend_from_slice(&[0, 0]);
    let repeated = |n: usize| V * n.div_ceil(V);
    let d = [id; V];
    let mut i = Zeroizing::new(Vec::with_capacity(
        repeated(salt.len()) + repeated(pw.len()),
    ));
    i.extend(salt.iter().cycle().take(repeated(salt.len())));
    i.extend(pw.iter().cycle().take(repeated(pw.len())));
    let mut out = Zeroizing::new(Vec::with_capacity(out_len));
    while out.len() < out_len {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&d);
        ctx.update(&i);
        let mut a = Zeroizing::new(ctx.finish().as_ref().to_vec());
        for _ in 1..iterations {
            let next = digest::digest(&digest::SHA256, &a);
            a.copy_from_slice(next.as_ref());
        }
        let take = (out_len - out.len()).min(U);
        out.extend_from_slice(&a[..take]);
        if out.len() >= out_len {
            break;
        }
        // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I.
        let b: Zeroizing<Vec<u8>> = Zeroizing::new(a.iter().copied().cycle().take(V).collect());
        for block in i.chunks_mut(V) {
            let mut carry: u16 = 1;
            for k in (0..V).rev() {
                let sum = u16::from(block[k]) + u16::from(b[k]) + carry;
                block[k] = (sum & 0xff) as u8;
                carry = sum >> 8;
            }
        }
    }
    Ok(out)
}

fn safe_bag(bag_oid: &str, value: &[u8], attrs: Option<&[u8]>) -> Vec<u8> {
    let mut parts = vec![oid_unchecked(bag_oid), tlv(0xa0, value)];
    if let Some(a) = attrs {
        parts.push(a.to_vec());
    }
    seq(&parts)
}

fn cert_bag(der: &[u8]) -> Vec<u8> {
    seq(&[oid_unchecked(OID_X509_CERT), tlv(0xa0, &octet_string(der))])
}

fn attribute(attr_oid: &str, value: &[u8]) -> Vec<u8> {
    seq(&[oid_unchecked(attr_oid), set(&[value.to_vec()])])
}

fn content_info(type_oid: &str, content: &[u8]) -> Vec<u8> {
    seq(&[oid_unchecked(type_oid), tlv(0xa0, content)])
}

fn bmp_string(s: &str) -> Result<Vec<u8>> {
    let mut b = Vec::with_capacity(s.len() * 2);
    for c in s.chars() {
        let mut buf = [0u16; 2];
        if c.encode_utf16(&mut buf).len() != 1 {
            return Err(Error::input(
                "friendly name",
                format!("{c:?} is outside the Basic Multilingual Plane (a PKCS#12 BMPString)"),
            ));
        }
        b.extend_from_slice(&buf[0].to_be_bytes());
    }
    Ok(tlv(0x1e, &b))
}

fn oid(dotted: &str) -> Result<Vec<u8>> {
    let o = pkcs8::ObjectIdentifier::new(dotted)
        .map_err(|e| Error::Crypto(format!("OID {dotted}: {e}")))?;
    Ok(tlv(0x06, o.as_bytes()))
}

/// For the constant OIDs of this module (checked by a unit test).
fn oid_unchecked(dotted: &str) -> Vec<u8> {
    oid(dotted).unwrap_or_default()
}

fn integer(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    let mut content = bytes[first..].to_vec();
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    tlv(0x02, &content)
}

fn octet_string(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A DER SET OF: elements sorted by their encoding (X.690 §11.6).
fn set(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted = parts.to_vec();
    sorted.sort();
    tlv(0x31, &sorted.concat())
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let first = len.iter().position(|&b| b != 0).unwrap_or(len.len() - 1);
        out.push(0x80 | (len.len() - first) as u8);
        out.extend_from_slice(&len[first..]);
    }
    out.extend_from_slice(content);
    out
}

/// A random passphrase for a PKCS#12 file: 6 groups of 4 characters from an alphabet without
/// look-alikes (about 120 bits), easy to read out or type.
pub fn generate_passphrase() -> Result<Passphrase> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789"; // 31 symbols, no l/1/o/0/i
    let mut out = String::with_capacity(29);
    let mut filled = 0;
    while filled < 24 {
        let bytes: [u8; 32] = crate::store::crypto::random()?;
        for b in bytes {
            // Rejection sampling: 248 = 8 × 31 keeps the choice uniform.
            if b >= 248 || filled == 24 {
                continue;
            }
            if filled > 0 && filled % 4 == 0 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[usize::from(b % 31)]));
            filled += 1;
        }
    }
    Ok(Passphrase::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each constant is the OID its name says, and `oid_unchecked` (used where the bags are
    /// built) encodes it to the right DER, never to its empty fallback. The expected bytes
    /// and names come from OpenSSL: `openssl asn1parse -genstr OID:<dotted> -out o.der`
    /// prints the name, `xxd -p o.der` the bytes.
    ///
    /// Fails when: `OID_CERT_BAG` was changed to `1.2.840.113549.1.12.10.1.2` (the key bag's
    /// OID; seen: certBag got `...0c0a0102`), and when `OID_LOCAL_KEY_ID` was made the invalid
    /// `1.2.840.113549.1.9.21.` (seen: `oid_unchecked` gave the empty fallback).
    #[test]
    fn constant_oids_encode() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        for (o, name, der) in [
            (OID_DATA, "pkcs7-data", "06092a864886f70d010701"),
            (
                OID_ENCRYPTED_DATA,
                "pkcs7-encryptedData",
                "06092a864886f70d010706",
            ),
            (OID_CERT_BAG, "certBag", "060b2a864886f70d010c0a0103"),
            (
                OID_SHROUDED_KEY_BAG,
                "pkcs8ShroudedKeyBag",
                "060b2a864886f70d010c0a0102",
            ),
            (OID_X509_CERT, "x509Certificate", "060a2a864886f70d01091601"),
            (OID_FRIENDLY_NAME, "friendlyName", "06092a864886f70d010914"),
            (OID_LOCAL_KEY_ID, "localKeyID", "06092a864886f70d010915"),
            (OID_SHA256, "sha256", "0609608648016503040201"),
        ] {
            assert_eq!(hex(&oid_unchecked(o)), der, "{name} ({o})");
            assert_eq!(hex(&oid(o).expect(name)), der, "{name} ({o})");
        }
    }

    /// The PKCS#12 KDF (with the password buffers built at their final size) gives OpenSSL's
    /// bytes, for a password shorter and one longer than a 64-byte block (non-ASCII, so the
    /// BMPString matters) and for outputs of one and of three hash rounds (the I update).
    /// Expected values: `openssl kdf -keylen N -kdfopt digest:SHA256 -kdfopt hexpass:<UTF-16BE
    /// of the password>0000 -kdfopt hexsalt:000102…0f -kdfopt iter:3 -kdfopt id:3 PKCS12KDF`
    /// (OpenSSL 3.0.19).
    ///
    /// Fails when: the password's terminator was left out (seen: the first value differed), and
    /// when the repeated password was cut to 64 bytes (seen: the long password's first value).
    #[test]
    fn kdf_matches_openssl() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let salt: Vec<u8> = (0u8..16).collect();
        for (pw, len, want) in [
            (
                "test-passphrase-1",
                32,
                "14a4deeb3ffad89ac20a0441d1dee85b31ca879f0caeacd6c9aae6e260e19359",
            ),
            (
                "test-passphrase-1",
                70,
                "14a4deeb3ffad89ac20a0441d1dee85b31ca879f0caeacd6c9aae6e260e1935915dc5bb2502233d08626a3d8172b7c7bc5b75b7c0d9fb79b3171b118b850645a3e298a83da6b",
            ),
            (
                "\u{dc}n\u{ef}c\u{f6}d\u{e9} passphrase that is longer than thirty-one chars",
                32,
                "70c0dab2f37c98d8aaad5f5f617b2af0dd452d3a31fc70d63e97fd66df399d85",
            ),
            (
                "\u{dc}n\u{ef}c\u{f6}d\u{e9} passphrase that is longer than thirty-one chars",
                70,
                "70c0dab2f37c98d8aaad5f5f617b2af0dd452d3a31fc70d63e97fd66df399d857bb563bf933a58313fc5453d4f4ca1a10d792e97b96f1d97ddf05fc221b6203024dead385c08",
            ),
        ] {
            let got =
                pkcs12_kdf_sha256(&Passphrase::new(pw.into()), &salt, 3, 3, len).expect("kdf");
            assert_eq!(hex(&got), want, "{pw:?}, {len} bytes");
        }
    }

    #[test]
    fn der_lengths() {
        assert_eq!(tlv(0x04, &[1; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[1; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[1; 300])[..4], [0x04, 0x82, 1, 44]);
        assert_eq!(integer(3), [0x02, 1, 3]);
        assert_eq!(integer(0), [0x02, 1, 0]);
        assert_eq!(integer(128), [0x02, 2, 0, 128]);
        assert_eq!(integer(100_000), [0x02, 3, 0x01, 0x86, 0xa0]);
    }

    #[test]
    fn generated_passphrases_have_the_documented_shape() {
        let p = generate_passphrase().expect("random");
        let s = p.expose_str();
        assert_eq!(s.len(), 29);
        assert_eq!(s.split('-').count(), 6);
        assert!(p.check_new().is_ok());
    }
}
