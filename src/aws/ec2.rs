//! The four EC2 Client VPN calls vpnca makes, over the EC2 Query API: a form-encoded POST
//! signed with SigV4 (aws-sigv4), sent with hyper, the XML answer read with roxmltree.
//!
//! Why not aws-sdk-ec2: it compiles hundreds of operations for these four, at a cost measured
//! in docs/aws.md. Credentials, region and endpoint come from aws-config as for ACM.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::error_chain;
use crate::{Error, Result};

/// The EC2 API version the calls are written against.
pub const API_VERSION: &str = "2016-11-15";

const ATTEMPTS: u32 = 3;
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A Client VPN endpoint, as DescribeClientVpnEndpoints tells it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientVpnEndpoint {
    /// `cvpn-endpoint-…`.
    pub id: String,
    /// The description, if any.
    pub description: Option<String>,
    /// `available`, `pending-associate`, …
    pub status: Option<String>,
    /// The endpoint's DNS name.
    pub dns_name: Option<String>,
    /// The ACM ARN of the server certificate.
    pub server_certificate_arn: Option<String>,
    /// The client root chain ARNs of its certificate (mutual) authentication options.
    pub client_root_chain_arns: Vec<String>,
    /// The authentication types (`certificate-authentication`, `federated-authentication`,
    /// `directory-service-authentication`).
    pub authentication_types: Vec<String>,
}

/// The CRL an endpoint holds, as ExportClientVpnClientCertificateRevocationList tells it.
#[derive(Debug, Clone)]
pub struct EndpointCrl {
    /// The PEM, if the endpoint has one.
    pub pem: Option<String>,
    /// `pending`, `active`, `failed`, `expired`, or empty.
    pub status: String,
    /// The status message, if any.
    pub message: Option<String>,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<bytes::Bytes>>;

/// A signed EC2 Query API client for one region and endpoint.
pub struct Ec2 {
    endpoint: http::Uri,
    region: String,
    creds: Credentials,
    client: HttpsClient,
}

impl Ec2 {
    /// `endpoint` is the service URL (e.g. `https://ec2.eu-west-1.amazonaws.com`).
    pub(crate) fn new(endpoint: &str, region: &str, creds: Credentials) -> Result<Ec2> {
        let uri: http::Uri = endpoint.parse().map_err(|e| Error::AwsConfig {
            reason: format!("EC2 endpoint URL {endpoint:?} is not a URL ({e})"),
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(Error::AwsConfig {
                reason: format!("EC2 endpoint URL {endpoint:?} must be http:// or https://HOST"),
            });
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| Error::AwsConfig {
                reason: format!("no trusted root certificates for HTTPS to EC2 ({e})"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Ec2 {
            endpoint: uri,
            region: region.to_owned(),
            creds,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// The service URL calls go to.
    pub fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    /// DescribeClientVpnEndpoints, every page; `ids` empty means all endpoints.
    pub(crate) async fn describe_endpoints(
        &self,
        ids: &[String],
    ) -> Result<Vec<ClientVpnEndpoint>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params: Vec<(String, String)> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (format!("ClientVpnEndpointId.{}", i + 1), id.clone()))
                .collect();
            if let Some(t) = &token {
                params.push(("NextToken".into(), t.clone()));
            }
            let xml = self.call("DescribeClientVpnEndpoints", &params).await?;
            let doc = parse_xml("DescribeClientVpnEndpoints", &xml)?;
            let root = doc.root_element();
            // The model's list element is singular (`clientVpnEndpoint`).
            if let Some(list) =
                child(root, "clientVpnEndpoint").or_else(|| child(root, "clientVpnEndpoints"))
            {
                for item in children(list, "item") {
                    out.push(endpoint_from_xml(item));
                }
            }
            token = child_text(root, "nextToken").filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// ImportClientVpnClientCertificateRevocationList.
    pub(crate) async fn import_crl(&self, endpoint_id: &str, pem: &str) -> Result<()> {
        let op = "ImportClientVpnClientCertificateRevocationList";
        let xml = self
            .call(
                op,
                &[
                    ("ClientVpnEndpointId".into(), endpoint_id.into()),
                    ("CertificateRevocationList".into(), pem.into()),
                ],
            )
            .await?;
        let doc = parse_xml(op, &xml)?;
        match child_text(doc.root_element(), "return").as_deref() {
            Some("true") => Ok(()),
            other => Err(Error::Aws {
                operation: op.into(),
                code: "UnexpectedResponse".into(),
                message: format!("the answer's <return> is {other:?}, not true"),
            }),
        }
    }

    /// ExportClientVpnClientCertificateRevocationList.
    pub(crate) async fn export_crl(&self, endpoint_id: &str) -> Result<EndpointCrl> {
        let op = "ExportClientVpnClientCertificateRevocationList";
        let xml = self
            .call(op, &[("ClientVpnEndpointId".into(), endpoint_id.into())])
            .await?;
        let doc = parse_xml(op, &xml)?;
        let root = doc.root_element();
        let status = child(root, "status");
        Ok(EndpointCrl {
            pem: child_text(root, "certificateRevocationList").filter(|s| !s.trim().is_empty()),
            status: status
                .and_then(|s| child_text(s, "code"))
                .unwrap_or_default(),
            message: status.and_then(|s| child_text(s, "message")),
        })
    }

    /// ExportClientVpnClientConfiguration: the endpoint's `.ovpn` text.
    pub(crate) async fn export_client_configuration(&self, endpoint_id: &str) -> Result<String> {
        let op = "ExportClientVpnClientConfiguration";
        let xml = self
            .call(op, &[("ClientVpnEndpointId".into(), endpoint_id.into())])
            .await?;
        let doc = parse_xml(op, &xml)?;
        child_text(doc.root_element(), "clientConfiguration").ok_or_else(|| Error::Aws {
            operation: op.into(),
            code: "UnexpectedResponse".into(),
            message: "the answer has no <clientConfiguration>".into(),
        })
    }

    /// One Query API call: retried on throttling, 5xx and connection failures.
    async fn call(&self, action: &str, params: &[(String, String)]) -> Result<String> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action);
        form.append_pair("Version", API_VERSION);
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let body = form.finish();
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            match self.attempt(action, &body).await {
                Ok(text) => return Ok(text),
                Err((e, retry)) => {
                    if !retry {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Aws {
            operation: action.into(),
            code: "NoAttempt".into(),
            message: "no attempt was made".into(),
        }))
    }

    /// One HTTP exchange. The error says whether a retry may help.
    async fn attempt(
        &self,
        action: &str,
        body: &str,
    ) -> std::result::Result<String, (Error, bool)> {
        let fail = |code: &str, message: String| Error::Aws {
            operation: action.into(),
            code: code.into(),
            message,
        };
        let req = self.signed_request(body).map_err(|e| (e, false))?;
        let resp = match tokio::time::timeout(CALL_TIMEOUT, self.client.request(req)).await {
            Err(_) => {
                return Err((
                    fail(
                        "Timeout",
                        format!(
                            "no answer from {} within {}s",
                            self.endpoint,
                            CALL_TIMEOUT.as_secs()
                        ),
                    ),
                    true,
                ));
            }
            Ok(Err(e)) => {
                return Err((
                    fail(
                        "Network",
                        format!("cannot reach {}: {}", self.endpoint, error_chain(&e)),
                    ),
                    true,
                ));
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let bytes = match tokio::time::timeout(CALL_TIMEOUT, resp.into_body().collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) => return Err((fail("Network", format!("reading the answer: {e}")), true)),
            Err(_) => return Err((fail("Timeout", "the answer stalled".into()), true)),
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        let (code, message) = error_from_xml(&text).unwrap_or_else(|| {
            (
                format!("HTTP{}", status.as_u16()),
                text.chars().take(300).collect(),
            )
        });
        let retry = status.is_server_error()
            || matches!(
                code.as_str(),
                "RequestLimitExceeded" | "Throttling" | "ServiceUnavailable" | "InternalError"
            );
        Err((fail(&code, message), retry))
    }

    fn signed_request(&self, body: &str) -> Result<http::Request<Full<bytes::Bytes>>> {
        let sign_err = |e: &dyn std::fmt::Display| Error::AwsConfig {
            reason: format!("cannot sign the EC2 request ({e})"),
        };
        let uri = self.endpoint.to_string();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let identity = self.creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| sign_err(&e))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &uri,
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| sign_err(&e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| sign_err(&e))?
            .into_parts();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(&self.endpoint)
            .header("content-type", content_type)
            .header("user-agent", concat!("vpnca/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(bytes::Bytes::from(body.to_owned())))
            .map_err(|e| sign_err(&e))?;
        instructions.apply_to_request_http1x(&mut req);
        Ok(req)
    }
}

fn parse_xml<'a>(op: &str, xml: &'a str) -> Result<roxmltree::Document<'a>> {
    roxmltree::Document::parse(xml).map_err(|e| Error::Aws {
        operation: op.into(),
        code: "UnexpectedResponse".into(),
        message: format!("the answer is not XML ({e})"),
    })
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(|c| {
        c.children()
            .filter(|t| t.is_text())
            .filter_map(|t| t.text())
            .collect()
    })
}

fn endpoint_from_xml(item: roxmltree::Node<'_, '_>) -> ClientVpnEndpoint {
    let mut chains = Vec::new();
    let mut types = Vec::new();
    if let Some(opts) = child(item, "authenticationOptions") {
        for opt in children(opts, "item") {
            if let Some(t) = child_text(opt, "type") {
                types.push(t);
            }
            if let Some(arn) = child(opt, "mutualAuthentication")
                .and_then(|m| child_text(m, "clientRootCertificateChain"))
            {
                chains.push(arn);
            }
        }
    }
    ClientVpnEndpoint {
        id: child_text(item, "clientVpnEndpointId").unwrap_or_default(),
        description: child_text(item, "description").filter(|d| !d.is_empty()),
        status: child(item, "status").and_then(|s| child_text(s, "code")),
        dns_name: child_text(item, "dnsName"),
        server_certificate_arn: child_text(item, "serverCertificateArn"),
        client_root_chain_arns: chains,
        authentication_types: types,
    }
}

/// `<Response><Errors><Error><Code>…</Code><Message>…</Message>` → (code, message).
fn error_from_xml(text: &str) -> Option<(String, String)> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let err = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Error")?;
    Some((
        child_text(err, "Code")?,
        child_text(err, "Message").unwrap_or_default(),
    ))
}

/// The default EC2 endpoint of a region.
pub(crate) fn default_endpoint(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://ec2.{region}.amazonaws.com.cn")
    } else {
        format!("https://ec2.{region}.amazonaws.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_error_and_endpoint_shapes() {
        let e = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidClientVpnEndpointId.NotFound</Code><Message>nope</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(
            error_from_xml(e),
            Some(("InvalidClientVpnEndpointId.NotFound".into(), "nope".into()))
        );
        assert_eq!(
            default_endpoint("cn-north-1"),
            "https://ec2.cn-north-1.amazonaws.com.cn"
        );
    }
}
