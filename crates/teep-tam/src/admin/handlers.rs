//! The admin API's handlers and JSON bodies (each handler documents itself for the
//! OpenAPI document).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use teep_cose::{CaCertificate, CryptoProvider, Curve, PrivateKey, PublicKey, TrustStore};
use teep_proto::ComponentId;
use teep_suit::verify::Anchors;
use utoipa::ToSchema;

use super::{Admin, ApiError, AuditDetail, TC_MEDIA_TYPES, parse_component_id, unix_now};
use crate::messages::SessionRecord;
use crate::report::ReportReader;
use crate::store::{
    AttestationOutcome, AuditEntry, DeviceId, DevicePage, DeviceSummary, PolicyScope, Registration,
    ReportRecord, SignerRecord, TcPolicy, TcRelease,
};
use crate::tc::release_and_ca;

/// One version of a TC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TcVersion {
    /// Manifest component ID (hex segments joined by `/`).
    pub manifest_id: String,
    /// `suit-manifest-sequence-number`.
    pub sequence: u64,
    /// SHA-256 of the bstr-wrapped manifest (hex).
    pub digest: String,
    /// Thumbprint of the signer key (hex).
    pub signer: Option<String>,
    /// The name of the TC-signer anchor whose raw key signed it, when one still does.
    #[serde(default)]
    pub signer_name: Option<String>,
    /// Manifest IDs it depends on.
    pub depends_on: Vec<String>,
}

impl From<&TcRelease> for TcVersion {
    fn from(r: &TcRelease) -> Self {
        Self {
            manifest_id: r.manifest_id.to_string(),
            sequence: r.sequence,
            digest: hex::encode(r.digest),
            signer: r.signer.map(hex::encode),
            signer_name: None,
            depends_on: r.depends_on.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A TC with every version held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TcInfo {
    /// Manifest component ID.
    pub manifest_id: String,
    /// Revoked by the operator (devices unlink it at their next contact).
    pub revoked: bool,
    /// Versions, in the order uploaded.
    pub versions: Vec<TcVersion>,
}

/// Names a TC.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TcRef {
    /// Manifest component ID.
    pub manifest_id: String,
}

/// A policy: manifest IDs to install, and those the device may ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyBody {
    /// TCs to install and keep up to date (their dependencies come with them).
    #[serde(default)]
    pub install: Vec<String>,
    /// TCs the device may request.
    #[serde(default)]
    pub requestable: Vec<String>,
}

impl From<&TcPolicy> for PolicyBody {
    fn from(p: &TcPolicy) -> Self {
        Self {
            install: p.install.iter().map(ToString::to_string).collect(),
            requestable: p.requestable.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Every policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyList {
    /// By device class.
    pub classes: BTreeMap<String, PolicyBody>,
    /// By device id (hex).
    pub devices: BTreeMap<String, PolicyBody>,
}

/// A SUIT report received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportInfo {
    /// When (Unix seconds).
    pub at: u64,
    /// The manifest it is about (hex digest).
    pub manifest_digest: String,
    /// Whether the procedure succeeded.
    pub success: bool,
    /// Where a failed procedure failed (the failed command), when the report is readable
    /// without the TAM's key (device-supplied: shown as text).
    #[serde(default)]
    pub failure: Option<String>,
}

impl ReportInfo {
    fn new(r: &ReportRecord, provider: &dyn CryptoProvider) -> Self {
        let reader = ReportReader {
            provider,
            tam_key: None,
        };
        Self {
            at: r.at,
            manifest_digest: hex::encode(r.manifest_digest),
            success: r.success,
            failure: reader.read(&r.report).ok().and_then(|f| f.failure),
        }
    }
}

/// A device as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceInfo {
    /// Thumbprint of its TEEP Agent key (hex).
    pub id: String,
    /// Its class.
    pub class: Option<String>,
    /// Revoked by the operator.
    pub revoked: bool,
    /// When it last attested successfully.
    pub attested_at: Option<u64>,
    /// Served without attestation (its key registered by the operator).
    pub attestation_exempt: bool,
    /// When the latest attestation result was accepted, and its size in bytes.
    pub last_attestation: Option<(u64, usize)>,
    /// Installed TCs (manifest ID and sequence number).
    pub installed: Vec<(String, u64)>,
    /// Releases it failed to install (`store::Failed`).
    pub failed: Vec<FailedInfo>,
    /// Latest SUIT reports, newest first.
    pub last_reports: Vec<ReportInfo>,
    /// Its last recorded contact.
    pub last_contact: Option<u64>,
    /// How its latest appraisal ended (failed ones included).
    pub last_outcome: Option<OutcomeInfo>,
}

/// A release a device failed to install, and until when the TAM waits to send it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FailedInfo {
    /// Its manifest ID.
    pub manifest_id: String,
    /// Its manifest digest (hex).
    pub digest: String,
    /// How many times in a row the device failed it.
    pub failures: u32,
    /// Not sent again before this time (Unix seconds), unless the device asks for it.
    pub held_until: u64,
}

/// One appraisal of a device's attestation and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutcomeInfo {
    /// When (Unix seconds).
    pub at: u64,
    /// `affirming`, `not-affirming`, `rejected` or `verifier-unavailable`.
    pub verdict: String,
    /// Why, in a few words (the EAR's status, the check that failed).
    pub detail: String,
}

impl From<&AttestationOutcome> for OutcomeInfo {
    fn from(o: &AttestationOutcome) -> Self {
        Self {
            at: o.at,
            verdict: o.verdict.name().to_owned(),
            detail: o.detail.clone(),
        }
    }
}

impl DeviceInfo {
    fn new(s: &DeviceSummary, provider: &dyn CryptoProvider) -> Self {
        let d = &s.device;
        Self {
            id: hex::encode(d.id.0),
            class: d.class.clone(),
            revoked: d.revoked,
            attested_at: d.attested_at,
            attestation_exempt: d.attestation_exempt,
            last_attestation: s.last_attestation.as_ref().map(|a| (a.at, a.ear.len())),
            installed: d
                .installed
                .iter()
                .map(|i| (i.manifest_id.to_string(), i.sequence))
                .collect(),
            failed: d
                .failed
                .iter()
                .map(|f| FailedInfo {
                    manifest_id: f.manifest_id.to_string(),
                    digest: hex::encode(f.digest),
                    failures: f.failures,
                    held_until: f.held_until(),
                })
                .collect(),
            last_reports: s
                .last_reports
                .iter()
                .map(|r| ReportInfo::new(r, provider))
                .collect(),
            last_contact: s.last_contact,
            last_outcome: s.last_outcome.as_ref().map(OutcomeInfo::from),
        }
    }
}

/// A TC-signer trust anchor: a raw key, or a CA certificate whose `x5chain` leaves sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignerBody {
    /// Its name.
    pub name: String,
    /// The public key, an encoded COSE_Key (hex); empty for a CA anchor.
    #[serde(default)]
    pub key: String,
    /// Component-ID prefixes it may write (`""`: everything).
    pub scope: Vec<String>,
    /// A CA certificate (PEM, or DER in hex) instead of `key`: envelopes signed by a leaf
    /// whose `x5chain` verifies to it are this anchor's. Listed as PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// One audit-log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditLine {
    /// When (Unix seconds).
    pub at: u64,
    /// The device it is about (hex), if any.
    pub device: Option<String>,
    /// What happened.
    pub event: String,
    /// What it affected, or why it was refused.
    #[serde(default)]
    pub detail: Option<String>,
}

/// A device registered in advance (before its first contact).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceRegistration {
    /// Its TEEP Agent key (P-256 or Ed25519, public): SubjectPublicKeyInfo PEM, or an
    /// encoded COSE_Key in hex. The device id is its RFC 9679 thumbprint.
    pub key: String,
    /// Its class (policy of that class applies); a known device keeps its own if absent.
    #[serde(default)]
    pub class: Option<String>,
    /// Serve it without attestation (older Agents that cannot produce Evidence); a known
    /// device keeps its setting if absent.
    #[serde(default)]
    pub attestation_exempt: Option<bool>,
}

/// Names a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceRef {
    /// The device id (hex): the thumbprint of its TEEP key.
    pub id: String,
    /// Whether this call made the device known (`false`: it was known, and kept its key,
    /// revocation, attestation and installed TCs).
    pub created: bool,
}

/// A device's class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClassBody {
    /// The class (`null`: none; its class's policy then no longer applies).
    pub class: Option<String>,
}

/// A page of the audit log.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct Page {
    /// Entries to skip.
    #[serde(default)]
    offset: u64,
    /// Entries to return (at most 1000; default 100).
    limit: Option<u64>,
}

/// Longest signer name or device class.
const NAME_MAX: usize = 128;

/// Refuses an empty, overlong or control-character name (`what`: which kind).
fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "a {what} is 1..={NAME_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

/// A device's TEEP key as the admin API takes it: SubjectPublicKeyInfo PEM (or a
/// certificate), or an encoded COSE_Key in hex. Only P-256 and Ed25519 (the TEEP cipher
/// suites' curves) are taken, and never a private key (it must not leave the device).
/// The key comes back without `alg`/`key_ops` restrictions, as the engine stores an
/// attested key; its thumbprint is the device id.
///
/// # Errors
/// Not such a key.
pub fn parse_teep_key(text: &str) -> Result<PublicKey, ApiError> {
    let bad = |e: String| ApiError::BadRequest(format!("key: {e}"));
    let key = if text.contains("-----BEGIN ") {
        PublicKey::from_pem(text).map_err(|e| bad(e.to_string()))?
    } else {
        let cbor =
            hex::decode(text.trim()).map_err(|e| bad(format!("neither PEM nor hex: {e}")))?;
        if PrivateKey::from_cose_key_bytes(&cbor).is_ok() {
            return Err(bad("a private key; send its public half only".into()));
        }
        PublicKey::from_cose_key_bytes(&cbor).map_err(|e| bad(e.to_string()))?
    };
    match key.curve() {
        Curve::P256 | Curve::Ed25519 => {
            PublicKey::from_bytes(key.curve(), key.as_bytes()).map_err(|e| bad(e.to_string()))
        }
        other => Err(bad(format!(
            "{other:?} is no TEEP Agent key curve (P-256 or Ed25519)"
        ))),
    }
}

/// A TC-signer CA anchor as the admin API takes it: one certificate, PEM or DER in hex,
/// that is a CA (basicConstraints cA, and keyCertSign if it has a keyUsage) and that
/// teep-cose takes as a trust anchor. A leaf is refused: pin its key instead.
///
/// # Errors
/// Not one CA certificate.
pub fn parse_ca_certificate(text: &str) -> Result<CaCertificate, ApiError> {
    use x509_cert::der::Decode as _;
    use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
    let bad = |e: String| ApiError::BadRequest(format!("CA certificate: {e}"));
    let der = if text.contains("-----BEGIN ") {
        let mut certs = teep_cose::certificates_from_pem(text).map_err(|e| bad(e.to_string()))?;
        if certs.len() != 1 {
            return Err(bad(format!("{} certificates; give one", certs.len())));
        }
        certs.pop().unwrap_or_default()
    } else {
        hex::decode(text.trim()).map_err(|e| bad(format!("neither PEM nor hex: {e}")))?
    };
    let cert = x509_cert::Certificate::from_der(&der).map_err(|e| bad(e.to_string()))?;
    let tbs = cert.tbs_certificate();
    let is_ca = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| bad(e.to_string()))?
        .is_some_and(|(_, bc)| bc.ca);
    if !is_ca {
        return Err(bad("not a CA (no basicConstraints cA=TRUE)".into()));
    }
    let usage = tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| bad(e.to_string()))?;
    if usage.is_some_and(|(_, ku)| !ku.key_cert_sign()) {
        return Err(bad("its keyUsage lacks keyCertSign".into()));
    }
    CaCertificate::from_der(der).map_err(|e| bad(e.to_string()))
}

/// A response with its audit detail.
fn detailed<T: IntoResponse>(detail: String, value: T) -> Response {
    (Extension(AuditDetail(detail)), value).into_response()
}

fn ids(texts: &[String]) -> Result<Vec<ComponentId>, ApiError> {
    texts.iter().map(|t| parse_component_id(t)).collect()
}

fn device_id(text: &str) -> Result<DeviceId, ApiError> {
    let mut id = [0; 32];
    hex::decode_to_slice(text, &mut id)
        .map_err(|e| ApiError::BadRequest(format!("device id {text:?}: {e}")))?;
    Ok(DeviceId(id))
}

fn is_tc_media_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    TC_MEDIA_TYPES
        .iter()
        .any(|m| m.eq_ignore_ascii_case(essence))
}

/// Uploads a TC version (a signed SUIT envelope).
#[utoipa::path(post, path = "/admin/tcs", tag = "tcs",
    request_body(content = Vec<u8>, content_type = "application/cbor",
        description = "SUIT envelope (also application/suit-envelope+cose)"),
    responses((status = 201, body = TcVersion), (status = 409, description = "rollback, signer change or revoked TC"),
        (status = 415), (status = 422, description = "does not verify, or out of the signer's scope")))]
pub(super) async fn upload_tc(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !is_tc_media_type(&headers) {
        return Err(ApiError::MediaType);
    }
    let signers = admin.store.signers().await?;
    let mut trust = TrustStore::new();
    let mut by_thumbprint = Vec::new();
    let mut by_ca = Vec::new();
    for s in &signers {
        // Anchors were checked when added; one that no longer parses signs nothing.
        match &s.ca {
            Some(der) => {
                if let Ok(ca) = CaCertificate::from_der(der.clone()) {
                    by_ca.push((ca.fingerprint(), s));
                    trust.add_ca(ca);
                }
            }
            None => {
                if let Ok(key) = PublicKey::from_cose_key_bytes(&s.key) {
                    by_thumbprint.push((key.thumbprint(), s));
                    trust.add_key(key);
                }
            }
        }
    }
    let anchors = Anchors {
        signers: &trust,
        mac_keys: &[],
        now: Some(unix_now()),
    };
    let (release, ca) = release_and_ca(body.to_vec(), admin.provider, &anchors, Vec::new())
        .map_err(|e| ApiError::Envelope(e.to_string()))?;
    // The anchor is the one the envelope verified through: the CA its x5chain verified
    // to, else the raw key that signed; a leaf's key never stands for a raw-key anchor.
    let signer = match ca {
        Some(fingerprint) => by_ca.iter().find(|(f, _)| *f == fingerprint),
        None => by_thumbprint
            .iter()
            .find(|(t, _)| Some(*t) == release.signer),
    }
    .map(|(_, s)| *s)
    .ok_or_else(|| ApiError::Envelope("not signed by a TC-signer anchor".into()))?;
    let what = format!(
        "manifest {} sequence {} signer {} key {}",
        release.manifest_id,
        release.sequence,
        signer.name,
        release.signer.map(hex::encode).unwrap_or_default()
    );
    if !signer
        .scope
        .iter()
        .any(|p| release.manifest_id.0.starts_with(&p.0))
    {
        return Err(ApiError::OutOfScope(signer.name.clone()).about(what));
    }
    admin
        .store
        .add_release(&release)
        .await
        .map_err(|e| ApiError::from(e).about(what.clone()))?;
    let release_id = hex::encode(release.digest);
    tracing::info!(manifest = %release.manifest_id.to_string(),
        sequence = release.sequence, signer = %signer.name, "TC uploaded");
    Ok(detailed(
        format!("{what} release {release_id}"),
        (
            StatusCode::CREATED,
            Json(TcVersion {
                signer_name: Some(signer.name.clone()),
                ..TcVersion::from(&release)
            }),
        ),
    ))
}

/// Lists every TC with its versions.
#[utoipa::path(get, path = "/admin/tcs", tag = "tcs", responses((status = 200, body = Vec<TcInfo>)))]
pub(super) async fn list_tcs(
    State(admin): State<Arc<Admin>>,
) -> Result<Json<Vec<TcInfo>>, ApiError> {
    let releases = admin.store.releases().await?;
    let revoked = admin.store.revoked_tcs().await?;
    let signers = admin.store.signers().await?;
    let named: Vec<([u8; 32], &str)> = signers
        .iter()
        .filter_map(|s| {
            let key = PublicKey::from_cose_key_bytes(&s.key).ok()?;
            Some((key.thumbprint(), s.name.as_str()))
        })
        .collect();
    let mut out: Vec<(ComponentId, TcInfo)> = Vec::new();
    for r in &releases {
        let version = TcVersion {
            signer_name: named
                .iter()
                .find(|(t, _)| Some(*t) == r.signer)
                .map(|(_, n)| (*n).to_owned()),
            ..TcVersion::from(r)
        };
        match out.iter_mut().find(|(id, _)| id == &r.manifest_id) {
            Some((_, tc)) => tc.versions.push(version),
            None => out.push((
                r.manifest_id.clone(),
                TcInfo {
                    manifest_id: version.manifest_id.clone(),
                    revoked: revoked.contains(&r.manifest_id),
                    versions: vec![version],
                },
            )),
        }
    }
    Ok(Json(out.into_iter().map(|(_, tc)| tc).collect()))
}

/// Revokes every version of a TC: devices holding it unlink it at their next contact.
#[utoipa::path(post, path = "/admin/tcs/revoke", tag = "tcs", request_body = TcRef,
    responses((status = 204), (status = 404)))]
pub(super) async fn revoke_tc(
    State(admin): State<Arc<Admin>>,
    Json(tc): Json<TcRef>,
) -> Result<Response, ApiError> {
    let id = parse_component_id(&tc.manifest_id)?;
    let what = format!("manifest {id}");
    admin
        .store
        .revoke_tc(&id)
        .await
        .map_err(|e| ApiError::from(e).about(what.clone()))?;
    tracing::info!(manifest = %tc.manifest_id, "TC revoked");
    Ok(detailed(what, StatusCode::NO_CONTENT))
}

/// Shows every policy.
#[utoipa::path(get, path = "/admin/policy", tag = "policy", responses((status = 200, body = PolicyList)))]
pub(super) async fn show_policy(
    State(admin): State<Arc<Admin>>,
) -> Result<Json<PolicyList>, ApiError> {
    let p = admin.store.policies().await?;
    Ok(Json(PolicyList {
        classes: p
            .classes
            .iter()
            .map(|(c, p)| (c.clone(), p.into()))
            .collect(),
        devices: p
            .devices
            .iter()
            .map(|(d, p)| (hex::encode(d.0), p.into()))
            .collect(),
    }))
}

/// Checks that every TC a policy names has a release (an operator's typo is refused).
async fn policy(admin: &Admin, body: &PolicyBody) -> Result<TcPolicy, ApiError> {
    let policy = TcPolicy {
        install: ids(&body.install)?,
        requestable: ids(&body.requestable)?,
    };
    let releases = admin.store.releases().await?;
    for id in policy.install.iter().chain(&policy.requestable) {
        if !releases.iter().any(|r| &r.manifest_id == id) {
            return Err(ApiError::BadRequest(format!(
                "no TC {id} has been uploaded"
            )));
        }
    }
    Ok(policy)
}

/// Sets the policy of a device class.
#[utoipa::path(put, path = "/admin/policy/class/{class}", tag = "policy", request_body = PolicyBody,
    params(("class" = String, Path, description = "device class")), responses((status = 204), (status = 400)))]
pub(super) async fn set_class_policy(
    State(admin): State<Arc<Admin>>,
    Path(class): Path<String>,
    Json(body): Json<PolicyBody>,
) -> Result<Response, ApiError> {
    let what = format!("class {class}");
    let p = policy(&admin, &body)
        .await
        .map_err(|e| e.about(what.clone()))?;
    admin
        .store
        .set_policy(PolicyScope::Class(&class), &p)
        .await?;
    tracing::info!(%class, "class policy set");
    Ok(detailed(policy_detail(&what, &p), StatusCode::NO_CONTENT))
}

/// The audit detail of a policy set for `target`: the TCs it names.
fn policy_detail(target: &str, p: &TcPolicy) -> String {
    let list = |ids: &[ComponentId]| {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "policy of {target}: install [{}] requestable [{}]",
        list(&p.install),
        list(&p.requestable)
    )
}

/// Sets the policy of one device (wins over its class's).
#[utoipa::path(put, path = "/admin/policy/device/{id}", tag = "policy", request_body = PolicyBody,
    params(("id" = String, Path, description = "device id (hex)")), responses((status = 204), (status = 400)))]
pub(super) async fn set_device_policy(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    Json(body): Json<PolicyBody>,
) -> Result<Response, ApiError> {
    let device = device_id(&id)?;
    let what = format!("device {}", hex::encode(device.0));
    let p = policy(&admin, &body)
        .await
        .map_err(|e| e.about(what.clone()))?;
    admin
        .store
        .set_policy(PolicyScope::Device(device), &p)
        .await?;
    tracing::info!(device = %device, "device policy set");
    Ok(detailed(policy_detail(&what, &p), StatusCode::NO_CONTENT))
}

/// Devices per page of `GET /admin/devices` unless `limit` says otherwise.
pub const DEVICES_PAGE: usize = 1000;
/// The largest page of `GET /admin/devices`.
pub const DEVICES_PAGE_MAX: usize = 10_000;

/// Which page of devices to list.
#[derive(Clone, Debug, Deserialize)]
pub struct DeviceListing {
    /// The devices after this id (hex): the last id of the page before.
    after: Option<String>,
    /// Devices to return (default 1000, at most 10 000).
    limit: Option<usize>,
}

/// Lists the known devices in id order, a page at a time: a full page carries a `Link`
/// header (`rel="next"`) to the next one, which starts after its last id, so devices
/// added or removed meanwhile neither repeat nor hide others.
#[utoipa::path(get, path = "/admin/devices", tag = "devices",
    params(("after" = Option<String>, Query, description = "list the devices after this id (hex): the last id of the page before"),
        ("limit" = Option<usize>, Query, description = "devices to return (default 1000, at most 10 000)")),
    responses((status = 200, body = Vec<DeviceInfo>,
        headers(("link" = String, description = "the next page, when this one is full"))),
        (status = 400)))]
pub(super) async fn list_devices(
    State(admin): State<Arc<Admin>>,
    Query(listing): Query<DeviceListing>,
) -> Result<(HeaderMap, Json<Vec<DeviceInfo>>), ApiError> {
    let after = listing.after.as_deref().map(device_id).transpose()?;
    let limit = listing
        .limit
        .unwrap_or(DEVICES_PAGE)
        .clamp(1, DEVICES_PAGE_MAX);
    let devices = admin
        .store
        .devices(DevicePage::After { after, limit })
        .await?;
    let mut headers = HeaderMap::new();
    if devices.len() == limit
        && let Some(last) = devices.last()
    {
        let next = format!(
            "</admin/devices?after={}&limit={limit}>; rel=\"next\"",
            hex::encode(last.device.id.0)
        );
        if let Ok(value) = next.parse() {
            headers.insert(header::LINK, value);
        }
    }
    let listed = devices
        .iter()
        .map(|d| DeviceInfo::new(d, admin.provider))
        .collect();
    Ok((headers, Json(listed)))
}

/// One known device, as listed.
#[utoipa::path(get, path = "/admin/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "device id (hex)")),
    responses((status = 200, body = DeviceInfo), (status = 400), (status = 404)))]
pub(super) async fn show_device(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
) -> Result<Json<DeviceInfo>, ApiError> {
    let device = device_id(&id)?;
    let found = admin.store.devices(DevicePage::One(device)).await?;
    found
        .first()
        .map(|d| Json(DeviceInfo::new(d, admin.provider)))
        .ok_or(ApiError::NotFound("device"))
}

/// Revokes a device: it gets nothing more, whatever its Evidence says.
#[utoipa::path(post, path = "/admin/devices/{id}/revoke", tag = "devices",
    params(("id" = String, Path, description = "device id (hex)")), responses((status = 204), (status = 404)))]
pub(super) async fn revoke_device(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let device = device_id(&id)?;
    let what = format!("device {}", hex::encode(device.0));
    admin
        .store
        .revoke_device(&device)
        .await
        .map_err(|e| ApiError::from(e).about(what.clone()))?;
    tracing::info!(device = %device, "device revoked");
    Ok(detailed(format!("{what} revoked"), StatusCode::NO_CONTENT))
}

/// Registers a device before its first contact: its TEEP key (the device id is the key's
/// thumbprint, as for an attested device), optionally its class and an attestation
/// exemption. A known device keeps its key, revocation (a revoked device stays revoked),
/// attestation and installed TCs; only the class and exemption given change.
#[utoipa::path(post, path = "/admin/devices", tag = "devices", request_body = DeviceRegistration,
    responses((status = 201, body = DeviceRef, description = "registered"),
        (status = 200, body = DeviceRef, description = "known: class or exemption updated"),
        (status = 400, description = "not a P-256 or Ed25519 public key, or a bad class")))]
pub(super) async fn register_device(
    State(admin): State<Arc<Admin>>,
    Json(body): Json<DeviceRegistration>,
) -> Result<Response, ApiError> {
    let key = parse_teep_key(&body.key)?;
    if let Some(class) = &body.class {
        check_name("device class", class)?;
    }
    let registration = Registration {
        id: DeviceId(key.thumbprint()),
        key: key.to_cose_key_bytes(),
        class: body.class,
        attestation_exempt: body.attestation_exempt,
    };
    let id = hex::encode(registration.id.0);
    let what = format!("device {id}");
    let created = admin
        .store
        .register_device(&registration)
        .await
        .map_err(|e| ApiError::from(e).about(what.clone()))?;
    tracing::info!(device = %registration.id, created, class = ?registration.class,
        attestation_exempt = ?registration.attestation_exempt, "device registered");
    let detail = format!(
        "{what} {} class {} attestation-exempt {}",
        if created { "registered" } else { "updated" },
        registration.class.as_deref().unwrap_or("(unchanged)"),
        registration
            .attestation_exempt
            .map_or_else(|| "(unchanged)".to_owned(), |e| e.to_string()),
    );
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(detailed(detail, (status, Json(DeviceRef { id, created }))))
}

/// Sets (or, with `null`, clears) a known device's class.
#[utoipa::path(put, path = "/admin/devices/{id}/class", tag = "devices", request_body = ClassBody,
    params(("id" = String, Path, description = "device id (hex)")),
    responses((status = 204), (status = 400), (status = 404)))]
pub(super) async fn set_device_class(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    Json(body): Json<ClassBody>,
) -> Result<Response, ApiError> {
    let device = device_id(&id)?;
    let what = format!("device {}", hex::encode(device.0));
    if let Some(class) = &body.class {
        check_name("device class", class).map_err(|e| e.about(what.clone()))?;
    }
    admin
        .store
        .set_device_class(&device, body.class.as_deref())
        .await
        .map_err(|e| ApiError::from(e).about(what.clone()))?;
    tracing::info!(device = %device, class = ?body.class, "device class set");
    Ok(detailed(
        format!("{what} class {}", body.class.as_deref().unwrap_or("(none)")),
        StatusCode::NO_CONTENT,
    ))
}

/// Lists the TC-signer anchors.
#[utoipa::path(get, path = "/admin/signers", tag = "signers", responses((status = 200, body = Vec<SignerBody>)))]
pub(super) async fn list_signers(
    State(admin): State<Arc<Admin>>,
) -> Result<Json<Vec<SignerBody>>, ApiError> {
    let signers = admin.store.signers().await?;
    Ok(Json(
        signers
            .iter()
            .map(|s| SignerBody {
                name: s.name.clone(),
                key: hex::encode(&s.key),
                scope: s.scope.iter().map(ToString::to_string).collect(),
                ca: s.ca.as_ref().map(|der| certificate_pem(der)),
            })
            .collect(),
    ))
}

/// Adds (or replaces) a TC-signer anchor.
#[utoipa::path(post, path = "/admin/signers", tag = "signers", request_body = SignerBody,
    responses((status = 201), (status = 400)))]
pub(super) async fn add_signer(
    State(admin): State<Arc<Admin>>,
    Json(body): Json<SignerBody>,
) -> Result<Response, ApiError> {
    check_name("signer name", &body.name)?;
    let what = format!("signer {}", body.name);
    let scope = ids(&body.scope).map_err(|e| e.about(what.clone()))?;
    let (key, ca, anchor) = match (&body.ca, body.key.is_empty()) {
        (Some(ca), true) => {
            let ca = parse_ca_certificate(ca).map_err(|e| e.about(what.clone()))?;
            let anchor = format!("CA sha256:{}", hex::encode(ca.fingerprint()));
            (Vec::new(), Some(ca.der().to_vec()), anchor)
        }
        (None, false) => {
            let key = hex::decode(&body.key)
                .map_err(|e| ApiError::BadRequest(format!("key: {e}")))
                .and_then(|k| {
                    PublicKey::from_cose_key_bytes(&k).map_err(|e| {
                        ApiError::BadRequest(format!("key is no usable COSE_Key: {e}"))
                    })
                })
                .map_err(|e| e.about(what.clone()))?;
            let anchor = format!("key {}", hex::encode(key.thumbprint()));
            (key.to_cose_key_bytes(), None, anchor)
        }
        _ => {
            return Err(
                ApiError::BadRequest("give a key or a CA certificate, not both".into()).about(what),
            );
        }
    };
    let record = SignerRecord {
        name: body.name,
        key,
        scope,
        ca,
    };
    admin.store.put_signer(&record).await?;
    tracing::info!(name = %record.name, %anchor, "TC signer added");
    let scope: Vec<String> = record.scope.iter().map(ToString::to_string).collect();
    Ok(detailed(
        format!("{what} {anchor} scope [{}]", scope.join(",")),
        StatusCode::CREATED,
    ))
}

/// A certificate's DER as PEM.
fn certificate_pem(der: &[u8]) -> String {
    use x509_cert::der::pem::{LineEnding, encode_string};
    encode_string("CERTIFICATE", LineEnding::LF, der).unwrap_or_default()
}

/// Removes a TC-signer anchor (the TCs it signed stay).
#[utoipa::path(delete, path = "/admin/signers/{name}", tag = "signers",
    params(("name" = String, Path, description = "anchor name")), responses((status = 204), (status = 404)))]
pub(super) async fn remove_signer(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let what = format!("signer {name}");
    admin
        .store
        .remove_signer(&name)
        .await
        .map_err(|e| ApiError::from(e).about(what.clone()))?;
    tracing::info!(%name, "TC signer removed");
    Ok(detailed(format!("{what} removed"), StatusCode::NO_CONTENT))
}

/// A page of the audit log, oldest first.
#[utoipa::path(get, path = "/admin/audit", tag = "audit",
    params(("offset" = Option<u64>, Query, description = "entries to skip"),
        ("limit" = Option<u64>, Query, description = "entries to return (at most 1000; default 100)")),
    responses((status = 200, body = Vec<AuditLine>)))]
pub(super) async fn list_audit(
    State(admin): State<Arc<Admin>>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<AuditLine>>, ApiError> {
    let limit = page.limit.unwrap_or(100).min(1000);
    let entries = admin.store.audit(page.offset, limit).await?;
    Ok(Json(
        entries
            .iter()
            .map(|e: &AuditEntry| AuditLine {
                at: e.at,
                device: e.device.map(|d| hex::encode(d.0)),
                event: e.event.clone(),
                detail: e.detail.clone(),
            })
            .collect(),
    ))
}

/// Prometheus metrics of the TEEP server (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub(super) async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.encode(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/admin/openapi.json", tag = "meta", responses((status = 200, body = Object)))]
pub(super) async fn openapi(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> Response {
    Json(doc.as_ref().clone()).into_response()
}

/// How many sessions to list.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct SessionPage {
    /// Entries (sessions, attestation outcomes) to return, newest first (at most 100;
    /// default 20).
    limit: Option<usize>,
}

impl SessionPage {
    fn limit(self) -> usize {
        self.limit.unwrap_or(20).min(100)
    }
}

/// The sessions of one device as exchanged, newest first: every TEEP message received and
/// sent with its decoded JSON view (what this TAM process recorded; device-supplied).
#[utoipa::path(get, path = "/admin/devices/{id}/sessions", tag = "devices",
    params(("id" = String, Path, description = "device id (hex)"),
        ("limit" = Option<usize>, Query, description = "sessions to return (at most 100; default 20)")),
    responses((status = 200, body = Vec<SessionRecord>), (status = 400)))]
pub(super) async fn device_sessions(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    Query(page): Query<SessionPage>,
) -> Result<Json<Vec<SessionRecord>>, ApiError> {
    let device = device_id(&id)?;
    Ok(Json(
        admin
            .messages
            .device_sessions(&device, page.limit())
            .await?,
    ))
}

/// A device's attestation over time: how each appraisal ended, newest first (the TAM
/// keeps the latest 100 per device).
#[utoipa::path(get, path = "/admin/devices/{id}/attestations", tag = "devices",
    params(("id" = String, Path, description = "device id (hex)"),
        ("limit" = Option<usize>, Query, description = "outcomes to return (at most 100; default 20)")),
    responses((status = 200, body = Vec<OutcomeInfo>), (status = 400), (status = 404)))]
pub(super) async fn device_attestations(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    Query(page): Query<SessionPage>,
) -> Result<Json<Vec<OutcomeInfo>>, ApiError> {
    let device = device_id(&id)?;
    let limit = u64::try_from(page.limit()).unwrap_or(u64::MAX);
    let outcomes = admin.store.attestation_outcomes(&device, limit).await?;
    Ok(Json(outcomes.iter().map(OutcomeInfo::from).collect()))
}

/// The newest sessions of any device (the console's live view), newest first.
#[utoipa::path(get, path = "/admin/sessions/latest", tag = "devices",
    params(("limit" = Option<usize>, Query, description = "sessions to return (at most 100; default 20)")),
    responses((status = 200, body = Vec<SessionRecord>)))]
pub(super) async fn latest_sessions(
    State(admin): State<Arc<Admin>>,
    Query(page): Query<SessionPage>,
) -> Result<Json<Vec<SessionRecord>>, ApiError> {
    Ok(Json(admin.messages.latest_sessions(page.limit()).await?))
}
