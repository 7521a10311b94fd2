//! What the store remembers of AWS: the ARNs it imported into (so a renewal re-imports into
//! the same ARN) and the Client VPN endpoints it pushed CRLs to.
//!
//! Two tables, created at `init` (stores made before them get them by their first AWS write).
//! Each import row carries an HMAC under the store's key, checked whenever the store is
//! unlocked: a swapped ARN would send the server key to another certificate.

use rusqlite::params;
use serde::Serialize;
use time::OffsetDateTime;

use crate::aws::ImportRole;
use crate::store::crypto::Keys;
use crate::store::{self, Store};
use crate::{Error, Result};

use super::AWS_SCHEMA as SCHEMA;
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
        if !super::state::has_table(&self.conn, "aws_imports")? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT arn, region, role, name, serial, imported_at, mac FROM aws_imports ORDER BY imported_at DESC, arn")
            .map_err(Error::db("reading the AWS records"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Vec<u8>>(6)?,
                ))
            })
            .map_err(Error::db("reading the AWS records"))?;
        let mut out = Vec::new();
        for row in rows {
            let (arn, region, role, name, serial, at, mac) =
                row.map_err(Error::db("reading the AWS records"))?;
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
        }
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
        if !super::state::has_table(&self.conn, "aws_endpoints")? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, region, crl_number, pushed_at FROM aws_endpoints ORDER BY region, id",
            )
            .map_err(Error::db("reading the AWS records"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(KnownEndpoint {
                    id: r.get(0)?,
                    region: r.get(1)?,
                    crl_number: r.get::<_, i64>(2)? as u64,
                    pushed_at: store::from_ts(r.get(3)?),
                })
            })
            .map_err(Error::db("reading the AWS records"))?;
        let out = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::db("reading the AWS records"))?;
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
            tx.sql().execute_batch(SCHEMA)
                .map_err(Error::db("creating the AWS tables"))?;
            tx.touch(super::state::Item::AwsImport(imp.arn.clone()))?;
            tx.touch(super::state::Item::AwsImports)?;
            tx.sql().execute(
                "INSERT INTO aws_imports (arn, region, role, name, serial, imported_at, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(arn) DO UPDATE SET region = excluded.region, role = excluded.role, name = excluded.name,
                 serial = excluded.serial, imported_at = excluded.imported_at, mac = excluded.mac",
                params![imp.arn, imp.region, imp.role.as_str(), imp.name, imp.serial, store::ts(imp.imported_at), mac_of(keys, imp)],
            )
            .map_err(Error::db("recording the ACM import"))?;
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
            tx.sql().execute_batch(SCHEMA)
                .map_err(Error::db("creating the AWS tables"))?;
            tx.touch(super::state::Item::AwsEndpoint(endpoint.into(), region.into()))?;
            tx.touch(super::state::Item::AwsEndpoints)?;
            tx.sql().execute(
                "INSERT INTO aws_endpoints (id, region, crl_number, pushed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id, region) DO UPDATE SET crl_number = excluded.crl_number, pushed_at = excluded.pushed_at",
                params![endpoint, region, crl_number as i64, store::ts(store::now())],
            )
            .map_err(Error::db("recording the CRL push"))?;
            store::audit_append(tx, keys, "push-crl", endpoint, "", detail)
        })
    }
}
