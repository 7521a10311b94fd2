//! The store's envelope encryption.
//!
//! A random 256-bit data key encrypts every private key (AES-256-GCM, a fresh 96-bit nonce per
//! blob, the record's identity as associated data) and, through HMAC-SHA-256 sub-keys,
//! authenticates every record and the audit chain. The data key itself is stored only wrapped
//! (AES-256-GCM) under a key derived from the passphrase with Argon2id, whose parameters and
//! salt are in the store header. `passwd` re-wraps the data key; nothing else changes.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::secret::Passphrase;
use crate::{Error, Result};

/// Argon2id parameters, kept in the store header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: RFC 9106's second recommended memory and passes, with one lane (OWASP's Argon2id setting);, about a quarter of a
    /// second here.
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

/// Lowest accepted memory cost (8 MiB) and passes (1).
pub const MIN_KDF_M_KIB: u32 = 8 * 1024;
/// Highest accepted memory cost: 1 GiB.
pub const MAX_KDF_M_KIB: u32 = 1024 * 1024;
/// Highest accepted passes.
pub const MAX_KDF_T: u32 = 10;
/// Highest accepted memory × passes, in KiB: 4 GiB (1 GiB × 4, 256 MiB × 10). The work an
/// unlock does before the passphrase is known to be right is bounded by this, whatever a
/// store header says (about 15 s and 1 GiB on a 2-core machine).
pub const MAX_KDF_WORK_KIB: u64 = 4 * 1024 * 1024;
/// Highest accepted lanes.
pub const MAX_KDF_P: u32 = 4;

impl KdfParams {
    /// Checks the parameters are within what `init` and `passwd` accept; a store header beyond
    /// them is a tampered one (see `Header::unwrap`).
    pub fn check(&self) -> Result<()> {
        if self.m_kib < MIN_KDF_M_KIB || self.m_kib > MAX_KDF_M_KIB {
            return Err(Error::input(
                "KDF memory",
                format!("{} KiB is outside 8 MiB..1 GiB (8..1024 MiB)", self.m_kib),
            ));
        }
        if self.t == 0 || self.t > MAX_KDF_T || self.p == 0 || self.p > MAX_KDF_P {
            return Err(Error::input(
                "KDF cost",
                format!(
                    "t={} p={} out of range (passes 1..{MAX_KDF_T}, lanes 1..{MAX_KDF_P})",
                    self.t, self.p
                ),
            ));
        }
        if u64::from(self.m_kib) * u64::from(self.t) > MAX_KDF_WORK_KIB {
            return Err(Error::input(
                "KDF cost",
                format!(
                    "{} MiB × {} passes is more than 4 GiB × passes (e.g. 1024 MiB × 4, 256 MiB × 10)",
                    self.m_kib / 1024,
                    self.t
                ),
            ));
        }
        Ok(())
    }
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| Error::Crypto("random number generator failed".into()))?;
    Ok(b)
}

/// Derives the key-encryption key from the passphrase.
pub(crate) fn derive_kek(
    pass: &Passphrase,
    salt: &[u8],
    p: KdfParams,
) -> Result<Zeroizing<[u8; 32]>> {
    p.check()?;
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32))
        .map_err(|e| Error::Crypto(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pass.expose(), salt, out.as_mut())
        .map_err(|e| Error::Crypto(format!("argon2: {e}")))?;
    Ok(out)
}

/// AES-256-GCM seal: `nonce || ciphertext || tag`.
pub(crate) fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let k = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::Crypto("aead key".into()))?,
    );
    let nonce_bytes: [u8; NONCE_LEN] = random()?;
    let mut buf = plaintext.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| Error::Crypto("aead seal".into()))?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&buf);
    buf.iter_mut().for_each(|b| *b = 0);
    Ok(out)
}

/// AES-256-GCM open; `None` when the key, the associated data or the blob is wrong.
pub(crate) fn open(key: &[u8; 32], aad: &[u8], blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if blob.len() < NONCE_LEN + 16 {
        return None;
    }
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let nonce = Nonce::try_assume_unique_for_key(&blob[..NONCE_LEN]).ok()?;
    let mut buf = Zeroizing::new(blob[NONCE_LEN..].to_vec());
    let len = k
        .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

/// The unwrapped keys of an open store.
///
/// Each capability has its own key, derived from the data key with its own label, so that a
/// role can later be given one without the others: `enc` opens the private keys, `mac`
/// authenticates the header, records and audit log, and the **state-signing key** (Ed25519)
/// signs each state head, which anyone holding only its public key — certified by the CA —
/// can check (docs/store-format.md#the-state-signing-key).
pub(crate) struct Keys {
    pub data_key: Zeroizing<[u8; 32]>,
    enc: Zeroizing<[u8; 32]>,
    mac: hmac::Key,
    state_seed: Zeroizing<[u8; 32]>,
}

impl Keys {
    pub fn from_data_key(dk: Zeroizing<[u8; 32]>) -> Keys {
        let sub = |label: &[u8]| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, dk.as_ref()), label);
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(tag.as_ref());
            k
        };
        let enc = sub(b"vpnca/v1/encryption-key");
        let mac_bytes = sub(b"vpnca/v1/mac-key");
        let state_seed = sub(b"vpnca/v2/state-signing-key");
        Keys {
            data_key: dk,
            enc,
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac_bytes.as_ref()),
            state_seed,
        }
    }

    /// The state-signing key pair (Ed25519), derived from the data key.
    fn state_key(&self) -> Result<aws_lc_rs::signature::Ed25519KeyPair> {
        aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(self.state_seed.as_ref())
            .map_err(|_| Error::Crypto("deriving the state-signing key".into()))
    }

    /// The state-signing public key (32 bytes, Ed25519).
    pub fn state_public_key(&self) -> Result<Vec<u8>> {
        use aws_lc_rs::signature::KeyPair;
        Ok(self.state_key()?.public_key().as_ref().to_vec())
    }

    /// Signs `msg` with the state-signing key.
    pub fn state_sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        Ok(self.state_key()?.sign(msg).as_ref().to_vec())
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        seal(&self.enc, aad, plaintext)
    }

    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        open(&self.enc, aad, blob)
    }

    /// HMAC-SHA-256 over length-prefixed fields (unambiguous encoding).
    pub fn mac(&self, fields: &[&[u8]]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.mac);
        for f in fields {
            ctx.update(&(f.len() as u64).to_be_bytes());
            ctx.update(f);
        }
        ctx.sign().as_ref().to_vec()
    }

    /// Constant-time check of a MAC.
    pub fn mac_ok(&self, fields: &[&[u8]], tag: &[u8]) -> bool {
        let expect = self.mac(fields);
        expect.len() == tag.len()
            && aws_lc_rs::constant_time::verify_slices_are_equal(&expect, tag).is_ok()
    }
}

/// SHA-256.
pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let k = [7u8; 32];
        let blob = seal(&k, b"record-1", b"secret").expect("seal");
        assert_eq!(
            open(&k, b"record-1", &blob).expect("open").as_slice(),
            b"secret"
        );
        assert!(
            open(&k, b"record-2", &blob).is_none(),
            "bound to its record"
        );
        let mut flipped = blob.clone();
        flipped[20] ^= 1;
        assert!(open(&k, b"record-1", &flipped).is_none(), "tamper detected");
        assert!(open(&[8u8; 32], b"record-1", &blob).is_none(), "wrong key");
    }
}
