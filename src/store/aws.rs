//! What the store remembers of AWS: the ARNs it imported into (so a renewal re-imports into
//! the same ARN) and the Client VPN endpoints it pushed CRLs to.
//!
//! Two tables, created at `init` (stores made before them get them by their first AWS write).
//! Each import row carries an HMAC under the store's key, checked whenever the store is
//! unlocked: a swapped ARN would send the server key to another certificate.

use serde::Serialize;
use time::OffsetDateTime;

use crate::aws::ImportRole;
use crate::store::crypto::Keys;
use crate::store::{self, Store};
use crate::{Error, Result};

use super::engine::{EndpointRow, Engine, ImportRow};
use super::state;

/// An ACM certificate this store imported into.
#[derive(Debug, Clone, Serialize)]
pub struct AcmImport {
    /// The certificate ARN.
    pub arn: String,
    /// Its region.
    pub region: String,
    /// `server` or `client`.
    pub role: ImportRole,
    /// The certificate name (CN) in the store.
    pub name: String,
    /// The serial last imported into this ARN (hex).
    pub serial: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub imported_at: OffsetDateTime,
}

/// A Client VPN endpoint this store pushed a CRL to.
#[derive(Debug, Clone, Serialize)]
pub struct KnownEndpoint {
    /// `cvpn-endpoint-…`.
    pub id: String,
    /// Its region.
    pub region: String,
    /// The CRL number last pushed.
    pub crl_number: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub pushed_at: OffsetDateTime,
}

fn import_mac_fields(i: &AcmImport) -> Vec<Vec<u8>> {
    vec![
        b"aws_import".to_vec(),
        i.arn.as_bytes().to_vec(),
        i.region.as_bytes().to_vec(),
        i.role.as_str().as_bytes().to_vec(),
        i.name.as_bytes().to_vec(),
        i.serial.as_bytes().to_vec(),
        store::ts(i.imported_at).to_string().into_bytes(),
    ]
}

pub(super) fn mac_of(keys: &Keys, i: &AcmImport) -> Vec<u8> {
    let f = import_mac_fields(i);
    let refs: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
    keys.mac(&refs)
}

impl Store {
    /// The ACM imports this store recorded, newest first. When the store is unlocked every
    /// row's MAC is checked ([`Error::Tampered`] otherwise); locked, they are read as is.
    pub fn acm_imports(&self) -> Result<Vec<AcmImport>> {
        if !self.conn.has_table("aws_imports")? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        self.conn.aws_imports(&mut |row| {
            let ImportRow {
                arn,
                region,
                role,
                name,
                serial,
                imported_at: at,
                mac,
            } = row;
            let role = ImportRole::parse(&role).ok_or_else(|| Error::Tampered {
                what: format!("ACM import record {arn} has an unknown role {role:?}"),
            })?;
            let imp = AcmImport {
                arn,
                region,
                role,
                name,
                serial,
                imported_at: store::from_ts(at),
            };
            if let Ok(keys) = self.keys() {
                let f = import_mac_fields(&imp);
                let refs: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
                if !keys.mac_ok(&refs, &mac) {
                    return Err(Error::Tampered {
                        what: format!("the ACM import record of {} was altered", imp.arn),
                    });
                }
            }
            out.push(imp);
            Ok(())
        })?;
        // Proven: each row, and the list of them (so a deleted row is seen too).
        let mut items = vec![state::Item::AwsImports];
        items.extend(out.iter().map(|i| state::Item::AwsImport(i.arn.clone())));
        self.proven(&items)?;
        Ok(out)
    }

    /// The ARN that `acm import` re-imports into for this name, role and region.
    pub fn recorded_import(
        &self,
        role: ImportRole,
        name: &str,
        region: &str,
    ) -> Result<Option<AcmImport>> {
        Ok(self
            .acm_imports()?
            .into_iter()
            .find(|i| i.role == role && i.name == name && i.region == region))
    }

    /// The endpoints this store pushed CRLs to.
    pub fn known_endpoints(&self) -> Result<Vec<KnownEndpoint>> {
        if !self.conn.has_table("aws_endpoints")? {
            return Ok(Vec::new());
        }
        let out: Vec<KnownEndpoint> = self
            .conn
            .aws_endpoints()?
            .into_iter()
            .map(|r| KnownEndpoint {
                id: r.id,
                region: r.region,
                crl_number: r.crl_number as u64,
                pushed_at: store::from_ts(r.pushed_at),
            })
            .collect();
        let mut items = vec![state::Item::AwsEndpoints];
        items.extend(
            out.iter()
                .map(|e| state::Item::AwsEndpoint(e.id.clone(), e.region.clone())),
        );
        self.proven(&items)?;
        Ok(out)
    }

    /// Records an import (replacing the row of the same ARN) and audits it, in one
    /// transaction.
    pub(crate) fn record_import(&self, imp: &AcmImport, detail: &serde_json::Value) -> Result<()> {
        self.write(|tx, keys| {
            tx.engine().create_aws_tables()?;
            tx.touch(super::state::Item::AwsImport(imp.arn.clone()))?;
            tx.touch(super::state::Item::AwsImports)?;
            tx.engine().aws_import_put(&ImportRow {
                arn: imp.arn.clone(),
                region: imp.region.clone(),
                role: imp.role.as_str().to_string(),
                name: imp.name.clone(),
                serial: imp.serial.clone(),
                imported_at: store::ts(imp.imported_at),
                mac: mac_of(keys, imp),
            })?;
            store::audit_append(tx, keys, "acm-import", &imp.name, &imp.serial, detail)
        })
    }

    /// Records a CRL push to an endpoint and audits it.
    pub(crate) fn record_push(
        &self,
        endpoint: &str,
        region: &str,
        crl_number: u64,
        detail: &serde_json::Value,
    ) -> Result<()> {
        self.write(|tx, keys| {
            tx.engine().create_aws_tables()?;
            tx.touch(super::state::Item::AwsEndpoint(
                endpoint.into(),
                region.into(),
            ))?;
            tx.touch(super::state::Item::AwsEndpoints)?;
            tx.engine().aws_endpoint_put(&EndpointRow {
                id: endpoint.to_string(),
                region: region.to_string(),
                crl_number: crl_number as i64,
                pushed_at: store::ts(store::now()),
            })?;
            store::audit_append(tx, keys, "push-crl", endpoint, "", detail)
        })
    }
}
