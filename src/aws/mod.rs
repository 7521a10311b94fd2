//! AWS: import server (and client) certificates into ACM, keep the ARN across renewals, push
//! CRLs to Client VPN endpoints, fetch endpoint profiles, report what AWS holds; sign with a
//! CA key held in KMS ([`kms`]).
//!
//! The calls are blocking: [`Aws`] owns a current-thread tokio runtime. Do not call it from
//! inside another async runtime. Credentials, region and endpoint come from the standard AWS
//! chain (environment, shared config and credentials files, SSO, process credentials, IMDS),
//! overridable by [`AwsOptions`]. See docs/aws.md.

pub mod acm;
pub mod clientvpn;
pub mod ec2;
pub mod kms;
pub mod preflight;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_types::region::Region;

pub use crate::store::aws::{AcmImport, KnownEndpoint};
pub use preflight::{ImportBundle, ImportRole, Violation};

use crate::{Error, Result};

/// Where and as whom to call AWS. Empty fields fall back to the standard chain.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// A named profile of the shared config files (`--profile`, else `AWS_PROFILE`).
    pub profile: Option<String>,
    /// The region (`--region`, else `AWS_REGION`, else the profile's).
    pub region: Option<String>,
    /// One endpoint URL for both services (`--endpoint-url`); otherwise
    /// `AWS_ENDPOINT_URL_ACM`, `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL`, or the profile's
    /// `endpoint_url` settings apply.
    pub endpoint_url: Option<String>,
}

/// A connection to AWS for one region: ACM through the SDK, EC2 through [`ec2::Ec2`].
pub struct Aws {
    rt: tokio::runtime::Runtime,
    region: String,
    acm: aws_sdk_acm::Client,
    ec2: ec2::Ec2,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws")
            .field("region", &self.region)
            .field("ec2", &self.ec2.endpoint())
            .finish_non_exhaustive()
    }
}

impl Aws {
    /// Resolves region, credentials and endpoints. Fails with [`Error::AwsConfig`] before any
    /// AWS call when there is no region or no usable credentials.
    pub fn connect(opts: &AwsOptions) -> Result<Aws> {
        let Resolved {
            rt,
            sdk,
            region,
            creds,
        } = resolve(opts)?;
        let ec2_url = service_url(&sdk, opts, "EC2", || ec2::default_endpoint(&region))?;
        let ec2 = {
            // hyper's client spawns its connection tasks: build it inside the runtime.
            let _guard = rt.enter();
            ec2::Ec2::new(&ec2_url, &region, creds)?
        };
        let acm = aws_sdk_acm::Client::new(&sdk);
        Ok(Aws {
            rt,
            region,
            acm,
            ec2,
        })
    }

    /// The region calls go to.
    pub fn region(&self) -> &str {
        &self.region
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// What the standard chain resolved, before any AWS call: the runtime the calls run on, the
/// SDK configuration, the region and the credentials.
pub(crate) struct Resolved {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) sdk: aws_types::SdkConfig,
    pub(crate) region: String,
    pub(crate) creds: aws_credential_types::Credentials,
}

/// Region and credentials from `opts` and the standard chain, on a new current-thread
/// runtime. [`Error::AwsConfig`] when either is missing.
pub(crate) fn resolve(opts: &AwsOptions) -> Result<Resolved> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::AwsConfig {
            reason: format!("cannot start the I/O runtime ({e})"),
        })?;
    if let Some(u) = &opts.endpoint_url {
        check_url(u)?;
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &opts.region {
        if r.is_empty() || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::AwsConfig {
                reason: format!("--region {r:?} is not a region name like eu-west-1"),
            });
        }
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(u) = &opts.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    let sdk = rt.block_on(loader.load());
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| Error::AwsConfig {
            reason: "no AWS region: pass --region, set AWS_REGION, or set `region` in the profile"
                .into(),
        })?;
    let provider = sdk.credentials_provider().ok_or_else(|| Error::AwsConfig {
        reason: "no AWS credentials provider is configured".into(),
    })?;
    let creds = rt
        .block_on(provider.provide_credentials())
        .map_err(|e| Error::AwsConfig {
            reason: format!(
                "no usable AWS credentials ({}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, pass --profile, or run `aws sso login`",
                error_chain(&e)
            ),
        })?;
    Ok(Resolved {
        rt,
        sdk,
        region,
        creds,
    })
}

/// The endpoint URL of a service called directly (not through the SDK): `--endpoint-url`,
/// else `AWS_ENDPOINT_URL_<SERVICE>` or the profile's `services` section, else the global
/// `AWS_ENDPOINT_URL` / `endpoint_url`, else `default`. Checked to be http(s).
pub(crate) fn service_url(
    sdk: &aws_types::SdkConfig,
    opts: &AwsOptions,
    service_id: &str,
    default: impl FnOnce() -> String,
) -> Result<String> {
    let url = match &opts.endpoint_url {
        Some(u) => u.clone(),
        None => sdk
            .service_config()
            .and_then(|c| {
                let key = aws_types::service_config::ServiceConfigKey::builder()
                    .service_id(service_id)
                    .env("AWS_ENDPOINT_URL")
                    .profile("endpoint_url")
                    .build()
                    .ok()?;
                c.load_config(key)
            })
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(default),
    };
    check_url(&url)?;
    Ok(url)
}

fn check_url(u: &str) -> Result<()> {
    let ok = u
        .parse::<http::Uri>()
        .ok()
        .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some())
        .is_some();
    if ok {
        Ok(())
    } else {
        Err(Error::AwsConfig {
            reason: format!("endpoint URL {u:?} is not an http:// or https:// URL"),
        })
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}
