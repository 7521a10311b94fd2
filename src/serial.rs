//! Certificate serial numbers: random, positive, at least 64 bits of entropy, written as hex.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A certificate serial number (the magnitude of a positive DER INTEGER, no leading zero bytes).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

/// Bytes of randomness in a new serial (the top bit is cleared so the number stays positive).
pub const RANDOM_SERIAL_BYTES: usize = 16;

impl Serial {
    /// A fresh random serial: 126 random bits (top bit clear so it is positive, next bit set so
    /// it is always 16 bytes long).
    pub fn random() -> Result<Serial> {
        let mut b = vec![0u8; RANDOM_SERIAL_BYTES];
        aws_lc_rs::rand::fill(&mut b)
            .map_err(|_| Error::Crypto("random number generator failed".into()))?;
        b[0] = (b[0] & 0x7f) | 0x40;
        Ok(Serial(b))
    }

    /// From big-endian magnitude bytes (leading zero bytes are dropped).
    pub fn from_bytes(bytes: &[u8]) -> Serial {
        let start = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len().saturating_sub(1));
        Serial(bytes[start..].to_vec())
    }

    /// Big-endian magnitude bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Canonical upper-case hex, as `openssl x509 -serial` prints it (without `serial=`).
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }
}

impl FromStr for Serial {
    type Err = Error;
    /// Accepts hex in any case, with or without `0x` and `:` separators (`openssl x509 -serial`,
    /// `openssl x509 -text` and easy-rsa's `index.txt` forms).
    fn from_str(s: &str) -> Result<Serial> {
        // The form vpnca stores (even-length hex, nothing else), read for every record: decoded
        // in place, without the copies the general path below makes.
        let b = s.as_bytes();
        if !b.is_empty() && b.len() <= 40 && b.len().is_multiple_of(2) {
            let nibble = |c: u8| char::from(c).to_digit(16);
            let mut bytes = [0u8; 20];
            let mut all_hex = true;
            for (i, pair) in b.chunks_exact(2).enumerate() {
                match (nibble(pair[0]), nibble(pair[1])) {
                    (Some(h), Some(l)) => bytes[i] = (h * 16 + l) as u8,
                    _ => {
                        all_hex = false;
                        break;
                    }
                }
            }
            if all_hex {
                return Ok(Serial::from_bytes(&bytes[..b.len() / 2]));
            }
        }
        let t = s.trim();
        let t = t.strip_prefix("serial=").unwrap_or(t);
        let t = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        let hex: String = t.chars().filter(|&c| c != ':').collect();
        let bad = || {
            Error::input(
                "serial",
                format!("{s:?} is not a hexadecimal serial number"),
            )
        };
        if hex.is_empty() || hex.len() > 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let padded = if !hex.len().is_multiple_of(2) {
            format!("0{hex}")
        } else {
            hex
        };
        let bytes = (0..padded.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>>>()?;
        Ok(Serial::from_bytes(&bytes))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_16_bytes() {
        for _ in 0..100 {
            let s = Serial::random().expect("rng");
            assert_eq!(s.as_bytes().len(), 16);
            assert!(s.as_bytes()[0] & 0x80 == 0 && s.as_bytes()[0] != 0);
        }
    }

    #[test]
    fn parse_forms() {
        let a: Serial = "0A:1b:FF".parse().expect("colons");
        assert_eq!(a.hex(), "0A1BFF");
        let b: Serial = "0x000a1bff".parse().expect("0x");
        assert_eq!(a, b);
        assert_eq!(
            "serial=5".parse::<Serial>().expect("openssl form").hex(),
            "05"
        );
        for bad in [
            "",
            "xyz",
            "12 34",
            &"f".repeat(41),
            &"f".repeat(42),
            "0g",
            "+1",
        ] {
            assert!(bad.parse::<Serial>().is_err(), "{bad}");
        }
        // The stored form (even-length hex, the fast path) means what the general path reads.
        for (text, hex) in [("000A1BFF", "0A1BFF"), ("0a1bff", "0A1BFF"), ("00", "00")] {
            assert_eq!(text.parse::<Serial>().expect(text).hex(), hex);
        }
        let forty = "7F".repeat(20);
        assert_eq!(forty.parse::<Serial>().expect("40 digits").hex(), forty);
    }
}
