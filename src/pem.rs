//! Clean PEM in and out.
//!
//! Output is always LF line endings, 64-column base64 lines, no trailing spaces and a final
//! newline: what ACM, the AWS CLI and OpenVPN accept without surprises. Input is tolerant:
//! CRLF, text before and between blocks (openssl's `-text` dump), several blocks.

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
