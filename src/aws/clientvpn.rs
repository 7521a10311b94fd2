//! Client VPN: push the CRL (and check what the endpoint then holds), find the endpoints
//! that use this PKI, fetch an endpoint's client configuration for a user's profile, and
//! compare what AWS holds with the store (`status --aws`).

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::ec2::ClientVpnEndpoint;
use super::{AcmImport, Aws};
use crate::cert::CertRecord;
use crate::check::Finding;
use crate::crl::CrlOptions;
use crate::ovpn::{ClientConfig, DirectivePolicy, ProfileBase, ProfileReport};
use crate::secret::Passphrase;
use crate::store::{self, Store, StoredCrl};
use crate::{Error, Result};

/// A CRL pushed within this many days of its nextUpdate is regenerated first: an endpoint
/// whose CRL expires lets nobody connect.
pub const PUSH_MIN_DAYS_LEFT: i64 = crate::crl::MIN_DAYS_LEFT as i64;

/// Why the stored CRL cannot be pushed as it is, if it can't: there is none, it does not list
/// every revoked certificate ([`Store::crl_missing_revocations`]: by serial, never by comparing
/// dates with its back-dated thisUpdate), or it expires within [`PUSH_MIN_DAYS_LEFT`] days.
pub fn crl_needs_regeneration(store: &Store) -> Result<Option<String>> {
    let now = store::now();
    let Some(crl) = store.latest_crl()? else {
        return Ok(Some("the store has no CRL yet".into()));
    };
    if let Some(stale) = store.crl_missing_revocations()? {
        return Ok(Some(stale.describe()));
    }
    if crl.next_update <= now + Duration::days(PUSH_MIN_DAYS_LEFT) {
        return Ok(Some(format!(
            "CRL #{} expires on {} (less than {PUSH_MIN_DAYS_LEFT} days)",
            crl.number,
            crate::fmt_time(crl.next_update)
        )));
    }
    Ok(None)
}

/// The CRL to push: the latest, or a new one when [`crl_needs_regeneration`] says so (that
/// needs the store unlocked). Returns the CRL and why it was regenerated, if it was.
///
/// A new CRL is committed to the store before this returns, so that no CRL leaves the machine
/// that the store does not hold. Call [`Aws::check_push`] first: then an AWS failure that can
/// be foreseen (credentials, region, an endpoint that does not exist, a newer CRL on the
/// endpoint) leaves the store unchanged.
pub fn crl_for_push(store: &Store) -> Result<(StoredCrl, Option<String>)> {
    let why = crl_needs_regeneration(store)?;
    if why.is_some() {
        store.generate_crl(&CrlOptions::from_store(store)?)?;
    }
    // The CRL leaves the machine: prove it against the authenticated state first (signature,
    // its own number, the revoked set), whatever the store's tables say.
    let crl = store.publishable_crl()?.ok_or_else(|| Error::NotFound {
        what: "a CRL".into(),
    })?;
    Ok((crl, why))
}

/// The outcome of pushing the CRL to one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct PushResult {
    /// The endpoint.
    pub endpoint: String,
    /// The CRL number sent.
    pub crl_number: u64,
    /// Entries in it.
    pub entries: usize,
    /// The CRL the endpoint returned on read-back is ours, byte for byte (DER).
    pub confirmed: bool,
    /// The endpoint's CRL status after the upload (`active`, `pending`, …).
    pub status: String,
}

/// An endpoint `--all` considered, and whether it gets our CRL.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointChoice {
    /// The endpoint.
    pub endpoint: ClientVpnEndpoint,
    /// Whether our CRL applies to it.
    pub selected: bool,
    /// Why (or why not).
    pub reason: String,
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    crate::pem::decode_all(pem.as_bytes(), "CRL")
        .ok()?
        .into_iter()
        .find(|b| b.label == "X509 CRL")
        .map(|b| b.der)
}

impl Aws {
    /// The endpoints whose server certificate or client root chain is one this store
    /// imported (in this region). An endpoint whose server certificate is ours but whose
    /// client root chain is another CA's is left out (our CRL would not apply), as are
    /// endpoints without certificate authentication.
    pub fn find_endpoints(&self, store: &Store) -> Result<Vec<EndpointChoice>> {
        let ours: Vec<AcmImport> = store
            .acm_imports()?
            .into_iter()
            .filter(|i| i.region == self.region)
            .collect();
        let is_ours = |arn: &str| ours.iter().any(|i| i.arn == arn);
        let all = self.block_on(self.ec2.describe_endpoints(&[]))?;
        let mut out = Vec::new();
        for e in all {
            let server_ours = e.server_certificate_arn.as_deref().is_some_and(is_ours);
            let chain_ours = e.client_root_chain_arns.iter().any(|a| is_ours(a));
            if !server_ours && !chain_ours {
                continue;
            }
            let (selected, reason) = if e.client_root_chain_arns.is_empty() {
                (
                    false,
                    "no certificate (mutual) authentication: it uses no CRL".to_string(),
                )
            } else if chain_ours {
                (true, "its client root chain is from this PKI".to_string())
            } else {
                // Server certificate ours, chain ARN unknown: look at what it holds.
                let mut from_us = false;
                for arn in &e.client_root_chain_arns {
                    if self.issued_by_store_ca(store, arn)? {
                        from_us = true;
                    }
                }
                if from_us {
                    (true, "its client root chain is this PKI's CA".to_string())
                } else {
                    (
                        false,
                        "its server certificate is from this PKI but its client root chain is another CA's; a CRL from this CA would not apply".to_string(),
                    )
                }
            };
            out.push(EndpointChoice {
                endpoint: e,
                selected,
                reason,
            });
        }
        Ok(out)
    }

    /// Whether the ACM certificate `arn` was issued by the store's CA (or is it).
    fn issued_by_store_ca(&self, store: &Store, arn: &str) -> Result<bool> {
        let (cert, chain) = self.acm_get(arn)?;
        let ca = store.ca()?;
        let mut ders = crate::pem::decode_certificates(cert.as_bytes(), arn).unwrap_or_default();
        if let Some(c) = chain {
            ders.extend(crate::pem::decode_certificates(c.as_bytes(), arn).unwrap_or_default());
        }
        Ok(ders.iter().any(|d| d == &ca.der))
    }

    /// DescribeClientVpnEndpoints for the given ids (all when empty).
    pub fn describe_endpoints(&self, ids: &[String]) -> Result<Vec<ClientVpnEndpoint>> {
        self.block_on(self.ec2.describe_endpoints(ids))
    }

    /// Everything `push-crl` can check before it changes anything, with calls that change
    /// nothing: one DescribeClientVpnEndpoints for `endpoints` (credentials, region, and that
    /// each endpoint exists: `InvalidClientVpnEndpointId.NotFound` otherwise), then each
    /// endpoint's CRL, which must not be a newer one of this CA than the store's latest (see
    /// [`Aws::push_crl`]). An error here leaves the store and the endpoints as they were.
    pub fn check_push(&self, store: &Store, endpoints: &[String]) -> Result<()> {
        for e in endpoints {
            check_endpoint_id(e)?;
        }
        if endpoints.is_empty() {
            return Ok(());
        }
        let found = self.block_on(self.ec2.describe_endpoints(endpoints))?;
        if let Some(gone) = endpoints
            .iter()
            .find(|e| !found.iter().any(|f| &f.id == *e))
        {
            return Err(Error::Aws {
                operation: "DescribeClientVpnEndpoints".into(),
                code: "InvalidClientVpnEndpointId.NotFound".into(),
                message: format!("{gone} is not among the endpoints of {}", self.region),
            });
        }
        let latest = store.latest_crl()?;
        for e in endpoints {
            self.check_not_older(store, e, latest.as_ref())?;
        }
        Ok(())
    }

    /// The endpoint is a witness outside the store: a CRL of this CA there, numbered above the
    /// store's `crl` (any, when the store has none), means the store is an older copy, and
    /// uploading would undo revocations.
    fn check_not_older(
        &self,
        store: &Store,
        endpoint: &str,
        crl: Option<&StoredCrl>,
    ) -> Result<()> {
        let before = self.block_on(self.ec2.export_crl(endpoint))?;
        let (ours, ours_der) = crl.map_or((0, &[][..]), |c| (c.number, &c.der[..]));
        if let (Some(der), Ok(ca)) = (before.pem.as_deref().and_then(pem_der), store.ca())
            && crate::crl::verify_signature(&der, &ca.der).is_ok()
            && let Ok((number, _)) = crate::crl::describe(&der)
            && (crl.is_none() || number > ours || (number == ours && der != ours_der))
        {
            return Err(Error::Tampered {
                what: format!(
                    "{endpoint} holds CRL number {number} of this CA, {}: the store is an older copy, and uploading would undo the revocations made since (nothing was uploaded)",
                    if crl.is_none() {
                        "and the store has no CRL".to_string()
                    } else if number > ours {
                        format!("newer than the store's CRL number {ours}")
                    } else {
                        format!("another CRL with the number of the store's CRL number {ours}")
                    }
                ),
            });
        }
        Ok(())
    }

    /// Uploads a CRL to an endpoint, reads it back and compares; records and audits the push.
    /// The endpoint's CRL is read first: a newer one of this CA is refused
    /// ([`Error::Tampered`], nothing uploaded). A read-back that differs is
    /// [`Error::RemoteMismatch`]. `crl` must be one the store holds ([`crl_for_push`]).
    pub fn push_crl(&self, store: &Store, endpoint: &str, crl: &StoredCrl) -> Result<PushResult> {
        check_endpoint_id(endpoint)?;
        // The endpoint records are proven before any AWS call (the push ends by recording one):
        // a record deleted or replayed outside vpnca stops here, before the upload.
        store.known_endpoints()?;
        // Only what the store has committed leaves the machine.
        if store.latest_crl()?.is_none_or(|l| l.der != crl.der) {
            return Err(Error::Refused {
                reason: format!(
                    "CRL #{} is not the store's latest CRL; only that one is uploaded (nothing was uploaded to {endpoint})",
                    crl.number
                ),
            });
        }
        self.check_not_older(store, endpoint, Some(crl))?;
        let pem = crate::pem::encode("X509 CRL", &crl.der);
        self.block_on(self.ec2.import_crl(endpoint, &pem))?;
        let back = self.block_on(self.ec2.export_crl(endpoint))?;
        let confirmed = back.pem.as_deref().and_then(pem_der).as_deref() == Some(&crl.der[..]);
        if !confirmed {
            return Err(Error::RemoteMismatch {
                what: format!(
                    "after uploading CRL #{} to {endpoint}, the endpoint returns {} (status {:?}{})",
                    crl.number,
                    if back.pem.is_some() {
                        "a different CRL"
                    } else {
                        "no CRL"
                    },
                    back.status,
                    back.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            });
        }
        store.record_push(
            endpoint,
            &self.region,
            crl.number,
            &serde_json::json!({"region": self.region, "crl_number": crl.number, "entries": crl.entries}),
        )?;
        Ok(PushResult {
            endpoint: endpoint.to_owned(),
            crl_number: crl.number,
            entries: crl.entries,
            confirmed,
            status: back.status,
        })
    }

    /// The endpoint's client configuration (ExportClientVpnClientConfiguration), parsed with
    /// `policy`: a directive that is not on the allow-list, or an extra `<ca>` certificate,
    /// is refused unless the policy lets it through (as for `vpnca profile --config`).
    pub fn endpoint_config(
        &self,
        endpoint: &str,
        policy: &DirectivePolicy,
    ) -> Result<ClientConfig> {
        check_endpoint_id(endpoint)?;
        // Zeroized: the endpoint's <tls-crypt> key may be in it.
        let text =
            zeroize::Zeroizing::new(self.block_on(self.ec2.export_client_configuration(endpoint))?);
        ClientConfig::parse_with(
            text.as_bytes(),
            &format!("the client configuration of {endpoint}"),
            policy,
        )
    }

    /// Writes a user's profile from the endpoint's client configuration, read with `policy`
    /// ([`Aws::endpoint_config`]) (mode 0600, never over an existing file, audited).
    #[allow(clippy::too_many_arguments)]
    pub fn write_endpoint_profile(
        &self,
        store: &Store,
        rec: &CertRecord,
        endpoint: &str,
        policy: &DirectivePolicy,
        random_hostname_prefix: bool,
        key_pass: Option<&Passphrase>,
        out: &std::path::Path,
    ) -> Result<ProfileReport> {
        let config = self.endpoint_config(endpoint, policy)?;
        let base = ProfileBase::Endpoint {
            config,
            random_hostname_prefix,
        };
        store.write_profile(rec, &base, key_pass, out)
    }

    /// What AWS holds compared with the store: each recorded ACM certificate (expiry,
    /// whether it still has the store's current serial) and each known or discovered
    /// endpoint (whether its CRL is the store's latest).
    ///
    /// A failed AWS call does not end the report: it becomes a `call-failed` finding naming
    /// what was not checked and why, the rest is checked all the same, and
    /// [`AwsStatus::complete`] is false. Errors of the store itself still end it.
    pub fn status(&self, store: &Store, warn_days: u32) -> Result<AwsStatus> {
        let now = store::now();
        let horizon = now + Duration::days(i64::from(warn_days.min(crate::profile::MAX_DAYS)));
        let mut findings = Vec::new();
        let mut certificates = Vec::new();
        let imports = store.acm_imports()?;
        let other_regions: Vec<AcmImport> = imports
            .iter()
            .filter(|i| i.region != self.region)
            .cloned()
            .collect();
        let mut complete = true;
        let mut call_failed = |findings: &mut Vec<Finding>, subject, what: String, e: Error| {
            complete = false;
            findings.push(aws_finding(
                subject,
                "call-failed",
                format!("{what} could not be checked: {e}"),
                None,
            ));
        };
        for imp in imports.iter().filter(|i| i.region == self.region) {
            let d = match self.acm_describe(&imp.arn) {
                Ok(d) => d,
                Err(e @ Error::Aws { .. }) => {
                    call_failed(
                        &mut findings,
                        "acm",
                        format!("the ACM certificate {} ({})", imp.arn, imp.name),
                        e,
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            let current = store.live(&imp.name)?;
            let store_serial = current.as_ref().map(|r| r.serial.hex());
            let up_to_date = match (&store_serial, &d.serial) {
                (Some(s), Some(a)) => super::acm::serial_matches(a, s),
                _ => false,
            };
            if let Some(na) = d.not_after {
                if na <= now {
                    findings.push(aws_finding("acm", "expired", format!("the ACM certificate {} ({}) expired on {}: the endpoint cannot accept connections; renew and re-import (`vpnca renew {}` then `vpnca acm import --{} {}`)", imp.arn, imp.name, crate::fmt_time(na), crate::shell::quote(&imp.name), imp.role.as_str(), crate::shell::quote(&imp.name)), Some(na)));
                } else if na <= horizon {
                    findings.push(aws_finding("acm", "expiring", format!("the ACM certificate {} ({}) expires on {}; renew and re-import (`vpnca renew {}` then `vpnca acm import --{} {}`)", imp.arn, imp.name, crate::fmt_time(na), crate::shell::quote(&imp.name), imp.role.as_str(), crate::shell::quote(&imp.name)), Some(na)));
                }
            }
            if !up_to_date {
                findings.push(aws_finding(
                    "acm",
                    "outdated",
                    match &store_serial {
                        Some(s) => format!(
                            "{} holds serial {} of {}, but the store's current certificate is serial {s}: run `vpnca acm import --{} {}`",
                            imp.arn,
                            d.serial.as_deref().unwrap_or("?"),
                            imp.name,
                            imp.role.as_str(),
                            crate::shell::quote(&imp.name)
                        ),
                        None => format!(
                            "{} holds a certificate of {}, which has no valid certificate in the store any more",
                            imp.arn, imp.name
                        ),
                    },
                    None,
                ));
            }
            certificates.push(AcmStatus {
                import: imp.clone(),
                acm: d,
                up_to_date,
            });
        }

        let latest = store.latest_crl()?;
        let mut ids: Vec<String> = store
            .known_endpoints()?
            .into_iter()
            .filter(|e| e.region == self.region)
            .map(|e| e.id)
            .collect();
        if imports.iter().any(|i| i.region == self.region) {
            match self.find_endpoints(store) {
                Ok(found) => {
                    for c in found {
                        if c.selected && !ids.contains(&c.endpoint.id) {
                            ids.push(c.endpoint.id);
                        }
                    }
                }
                Err(e @ Error::Aws { .. }) => call_failed(
                    &mut findings,
                    "clientvpn",
                    format!(
                        "which endpoints in {} use this store's certificates (only the {} endpoint(s) vpnca pushed CRLs to are checked below)",
                        self.region,
                        ids.len()
                    ),
                    e,
                ),
                Err(e) => return Err(e),
            }
        }
        let mut endpoints = Vec::new();
        for id in ids {
            let back = match self.block_on(self.ec2.export_crl(&id)) {
                Ok(b) => b,
                Err(Error::Aws { code, .. }) if code == "InvalidClientVpnEndpointId.NotFound" => {
                    findings.push(aws_finding(
                        "clientvpn",
                        "gone",
                        format!(
                            "{id} no longer exists in {} (vpnca pushed CRLs to it before)",
                            self.region
                        ),
                        None,
                    ));
                    continue;
                }
                Err(e @ Error::Aws { .. }) => {
                    call_failed(&mut findings, "clientvpn", format!("the CRL on {id}"), e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let der = back.pem.as_deref().and_then(pem_der);
            let info = der.as_deref().and_then(|d| crate::crl::describe(d).ok());
            let matches = match (&der, &latest) {
                (Some(d), Some(l)) => d == &l.der,
                _ => false,
            };
            if let Some((_, next)) = info
                && next <= now
            {
                findings.push(aws_finding("clientvpn", "crl-expired", format!("the CRL on {id} expired on {}: NO USER CAN CONNECT; run `vpnca clientvpn push-crl --endpoint {id}`", crate::fmt_time(next)), Some(next)));
            } else if !matches {
                findings.push(aws_finding(
                    "clientvpn",
                    "crl-differs",
                    format!(
                        "the CRL on {id} is {}, not the store's latest{}: run `vpnca clientvpn push-crl --endpoint {id}`",
                        match info {
                            Some((n, _)) => format!("#{n}"),
                            None => "missing".into(),
                        },
                        latest.as_ref().map(|l| format!(" (#{})", l.number)).unwrap_or_default()
                    ),
                    None,
                ));
            }
            endpoints.push(EndpointStatus {
                id,
                crl_number: info.map(|(n, _)| n),
                crl_status: back.status,
                crl_matches: matches,
            });
        }
        Ok(AwsStatus {
            region: self.region.clone(),
            other_regions,
            certificates,
            endpoints,
            findings,
            complete,
        })
    }
}

fn aws_finding(
    subject: &str,
    problem: &str,
    message: String,
    date: Option<OffsetDateTime>,
) -> Finding {
    crate::check::finding(subject, problem, message, None, date)
}

/// `cvpn-endpoint-` and hex: refuse anything else before a call.
pub fn check_endpoint_id(id: &str) -> Result<()> {
    let ok = id.strip_prefix("cvpn-endpoint-").is_some_and(|h| {
        !h.is_empty() && h.len() <= 32 && h.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            "--endpoint",
            format!("{id:?} is not a Client VPN endpoint id (cvpn-endpoint-…)"),
        ))
    }
}

/// One recorded ACM certificate, as `status --aws` found it.
#[derive(Debug, Clone, Serialize)]
pub struct AcmStatus {
    /// What the store recorded.
    pub import: AcmImport,
    /// What ACM says.
    pub acm: super::acm::AcmCertificate,
    /// ACM holds the store's current certificate of that name.
    pub up_to_date: bool,
}

/// One endpoint, as `status --aws` found it.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointStatus {
    /// The endpoint.
    pub id: String,
    /// The number of the CRL it holds.
    pub crl_number: Option<u64>,
    /// Its CRL status.
    pub crl_status: String,
    /// It holds the store's latest CRL.
    pub crl_matches: bool,
}

/// What `status --aws` reports.
#[derive(Debug, Clone, Serialize)]
pub struct AwsStatus {
    /// The region checked.
    pub region: String,
    /// Recorded imports in other regions (not checked: run again with their `--region`).
    pub other_regions: Vec<AcmImport>,
    /// The recorded ACM certificates of that region.
    pub certificates: Vec<AcmStatus>,
    /// The endpoints checked.
    pub endpoints: Vec<EndpointStatus>,
    /// What needs attention.
    pub findings: Vec<Finding>,
    /// Every AWS call succeeded. When false, the `call-failed` findings say what was not
    /// checked; `status --aws` then exits 3.
    pub complete: bool,
}
