//! The background-check flow through the HTTP Verifier on loopback: the relying party (a
//! TAM) asks for a challenge, the Attester answers with Evidence carrying it, the relying
//! party forwards the Evidence and checks the signed EAR it gets back. Then the attacks on
//! the service: no token, a wrong token, one relying party flooding, another's challenge,
//! and the rate limit. The same flow also runs against the in-process Verifier, through the
//! one `Appraiser` trait.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::{
    num::{NonZeroU32, NonZeroUsize},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use teep_attest::{
    AppraisalRequest, AppraisalResponse, Appraiser, Cnf, DebugStatus, EatClaims, Endorsement,
    EndorsementScope, Manifest, Oemid, Policy, ReferenceValues, ResultCheck, ResultError,
    SigningVerifier, Status, Verifier, VerifierId, Version, appraiser::InProcess,
    claims::TEEP_EAT_PROFILE, sign_evidence, verify_ear,
};
use teep_cose::{CryptoProvider, Curve, PrivateKey, TrustStore, default_provider};
use teep_verifier::{Client, ClientError, Config, RateLimit, RelyingParties, Service};

const TOKEN_A: &str = "tam-a-0123456789abcdef0123456789abcdef";
const TOKEN_B: &str = "tam-b-0123456789abcdef0123456789abcdef";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The keys of one deployment: Attester, TEEP Agent, Verifier.
struct Keys {
    attestation: PrivateKey,
    teep: PrivateKey,
    verifier: PrivateKey,
}

impl Keys {
    fn new() -> Self {
        let key = || PrivateKey::generate(Curve::P256).unwrap();
        Self {
            attestation: key(),
            teep: key(),
            verifier: key(),
        }
    }

    fn policy(&self) -> Policy {
        Policy {
            id: Some("policy:loopback".into()),
            endorsements: vec![Endorsement {
                key: self.attestation.public_key().clone(),
                scope: EndorsementScope::Ueid(vec![1; 17]),
            }],
            reference: ReferenceValues {
                oemids: vec![Oemid::Ieee([0x89, 0x48, 0x23])],
                hwmodels: vec![vec![0x54; 16]],
                hwversions: vec![],
                min_dbgstat: Some(DebugStatus::Disabled),
                require_secboot: false,
                tc_digests: vec![vec![0xa7; 32]],
            },
            freshness_window: 60,
            clock_skew: 60,
        }
    }

    fn signing_verifier(&self) -> SigningVerifier {
        let provider: &'static dyn CryptoProvider = default_provider();
        let verifier = Verifier::new(
            self.policy(),
            VerifierId {
                developer: "teep project".into(),
                build: "loopback test".into(),
            },
        );
        let signer = provider
            .signer(&self.verifier, self.verifier.default_algorithm())
            .unwrap();
        SigningVerifier::new(verifier, signer, provider)
    }

    fn evidence(&self, nonce: &[u8]) -> Vec<u8> {
        let claims = EatClaims {
            profile: Some(TEEP_EAT_PROFILE.into()),
            nonce: Some(nonce.to_vec()),
            ueid: Some(vec![1; 17]),
            oemid: Some(Oemid::Ieee([0x89, 0x48, 0x23])),
            hwmodel: Some(vec![0x54; 16]),
            hwversion: Some(Version {
                version: "2.0".into(),
                scheme: None,
            }),
            manifests: Some(vec![Manifest::suit_reference(
                "https://tam.example/tc.suit",
                [0xa7; 32],
            )]),
            cnf: Some(Cnf::Kid(self.teep.public_key().thumbprint().to_vec())),
            iat: Some(now() as i64),
            dbgstat: Some(DebugStatus::DisabledSinceBoot),
            ..EatClaims::default()
        };
        let signer = default_provider()
            .signer(&self.attestation, self.attestation.default_algorithm())
            .unwrap();
        sign_evidence(&claims, signer.as_ref()).unwrap()
    }

    /// The relying party's check of an EAR for `nonce`: Ok(()) when affirming.
    fn check(&self, signed_ear: &[u8], nonce: &[u8]) -> Result<(), ResultError> {
        let mut trust = TrustStore::new();
        trust.add_key(self.verifier.public_key().clone());
        let check = ResultCheck {
            provider: default_provider(),
            verifiers: &trust,
            nonce: Some(nonce),
            now: now(),
            max_age: 60,
            teep_key: self.teep.public_key(),
        };
        let ear = verify_ear(signed_ear, &check)?;
        assert_eq!(ear.verifier_id.build, "loopback test");
        assert_eq!(ear.status(), Status::Affirming);
        Ok(())
    }
}

const CONTRAINDICATED: Result<(), ResultError> =
    Err(ResultError::NotAffirming(Status::Contraindicated));

/// A running service for two relying parties, `tam-a` and `tam-b`.
struct Server {
    keys: Keys,
    base: String,
}

impl Server {
    async fn start(max_challenges: usize, rate: RateLimit) -> Self {
        let keys = Keys::new();
        let parties =
            RelyingParties::parse(&format!("tam-a {TOKEN_A}\ntam-b {TOKEN_B}\n")).unwrap();
        let config = Config {
            max_challenges: NonZeroUsize::new(max_challenges).unwrap(),
            rate,
            ..Config::new(parties)
        };
        let service = Arc::new(Service::new(keys.signing_verifier(), config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(teep_verifier::serve(listener, service));
        Self { keys, base }
    }

    async fn with_defaults() -> Self {
        Self::start(16, generous()).await
    }

    fn client(&self, token: &str) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Client::new(self.base.clone(), token, http).unwrap()
    }

    /// A raw request, authenticated by `authorization` when given.
    async fn raw(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(format!("{}/{path}", self.base))
            .header("content-type", "application/eat+cwt")
            .body(body);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send().await.unwrap()
    }
}

fn generous() -> RateLimit {
    RateLimit::per_second(
        NonZeroU32::new(1000).unwrap(),
        NonZeroU32::new(1000).unwrap(),
    )
}

/// The relying party's flow, whichever Verifier answers: affirming with a fresh challenge,
/// contraindicated for a replay and for a nonce the Verifier never issued; and the same
/// through the sans-IO request/response pair.
async fn background_check(appraiser: &(impl Appraiser + Sync), keys: &Keys) {
    let challenge = appraiser.challenge(now()).await.unwrap();
    assert_eq!(challenge.nonce.len(), 32);
    assert_eq!(challenge.expires_in, 60);
    let evidence = keys.evidence(&challenge.nonce);
    let ear = appraiser.appraise(&evidence, now()).await.unwrap();
    keys.check(&ear, &challenge.nonce).unwrap();

    let replayed = appraiser.appraise(&evidence, now()).await.unwrap();
    assert_eq!(keys.check(&replayed, &challenge.nonce), CONTRAINDICATED);

    let made_up = [7u8; 32];
    let ear = appraiser
        .appraise(&keys.evidence(&made_up), now())
        .await
        .unwrap();
    assert_eq!(keys.check(&ear, &made_up), CONTRAINDICATED);

    let AppraisalResponse::Challenge(challenge) = appraiser
        .fulfil(AppraisalRequest::Challenge, now())
        .await
        .unwrap()
    else {
        panic!("a challenge request answered with an EAR")
    };
    let request = AppraisalRequest::Appraise(keys.evidence(&challenge.nonce));
    let AppraisalResponse::Ear(ear) = appraiser.fulfil(request, now()).await.unwrap() else {
        panic!("an appraisal request answered with a challenge")
    };
    keys.check(&ear, &challenge.nonce).unwrap();
}

#[tokio::test]
async fn background_check_through_the_http_client() {
    let server = Server::with_defaults().await;
    background_check(&server.client(TOKEN_A), &server.keys).await;
}

#[tokio::test]
async fn background_check_in_process() {
    let keys = Keys::new();
    background_check(&InProcess::new(keys.signing_verifier()), &keys).await;
}

#[tokio::test]
async fn verify_wants_the_evidence_media_type() {
    let server = Server::with_defaults().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/verify", server.base))
        .header("authorization", format!("Bearer {TOKEN_A}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let too_big = vec![0u8; teep_verifier::MAX_EVIDENCE + 1];
    assert!(matches!(
        server.client(TOKEN_A).appraise(&too_big, now()).await,
        Err(ClientError::Status(413))
    ));
}

/// Without a token, with a wrong one, with another scheme: 401, and nothing issued or
/// redeemed. tam-a may hold one challenge; if any refused call had issued one for it, its
/// challenge would be evicted, and if the refused `/verify` had redeemed it, it would be
/// spent.
#[tokio::test]
async fn unauthenticated_calls_get_401_and_change_nothing() {
    let server = Server::start(1, generous()).await;
    let a = server.client(TOKEN_A);
    let challenge = a.challenge(now()).await.unwrap();
    let evidence = server.keys.evidence(&challenge.nonce);

    let wrong = [
        None,
        Some("Bearer tam-a-0123456789abcdef0123456789abcdeX".to_owned()),
        Some(format!("Bearer {TOKEN_A}x")),
        Some(format!("Basic {TOKEN_A}")),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer{TOKEN_A}")),
    ];
    for auth in &wrong {
        for path in ["challenge", "verify"] {
            let resp = server.raw(path, auth.as_deref(), evidence.clone()).await;
            assert_eq!(resp.status().as_u16(), 401, "{path} with {auth:?}");
            assert!(
                resp.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
            assert!(resp.bytes().await.unwrap().is_empty());
        }
    }
    let wrong_client = server.client("tam-c-0123456789abcdef0123456789abcdef");
    assert!(matches!(
        wrong_client.challenge(now()).await,
        Err(ClientError::Unauthorized)
    ));

    let ear = a.appraise(&evidence, now()).await.unwrap();
    server.keys.check(&ear, &challenge.nonce).unwrap();
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let resp = server
        .raw("challenge", Some(&format!("bEaReR {TOKEN_A}")), vec![])
        .await;
    assert_eq!(resp.status().as_u16(), 200);
}

/// The lockout attack: tam-b asks for far more challenges than its bound of 4. tam-a's
/// challenge issued before the flood still redeems, and tam-a still gets new ones.
#[tokio::test]
async fn one_relying_party_flooding_cannot_lock_out_another() {
    let server = Server::start(4, generous()).await;
    let (a, b) = (server.client(TOKEN_A), server.client(TOKEN_B));
    let before = a.challenge(now()).await.unwrap();
    for _ in 0..200 {
        b.challenge(now()).await.unwrap();
    }
    let ear = a
        .appraise(&server.keys.evidence(&before.nonce), now())
        .await
        .unwrap();
    server.keys.check(&ear, &before.nonce).unwrap();
    let after = a.challenge(now()).await.unwrap();
    let ear = a
        .appraise(&server.keys.evidence(&after.nonce), now())
        .await
        .unwrap();
    server.keys.check(&ear, &after.nonce).unwrap();
}

/// A challenge is redeemable only by the relying party it was issued to: tam-b sending
/// tam-a's Evidence neither succeeds nor spends tam-a's challenge.
#[tokio::test]
async fn another_relying_partys_challenge_is_unknown() {
    let server = Server::with_defaults().await;
    let (a, b) = (server.client(TOKEN_A), server.client(TOKEN_B));
    let challenge = a.challenge(now()).await.unwrap();
    let evidence = server.keys.evidence(&challenge.nonce);
    let ear = b.appraise(&evidence, now()).await.unwrap();
    assert_eq!(server.keys.check(&ear, &challenge.nonce), CONTRAINDICATED);
    let ear = a.appraise(&evidence, now()).await.unwrap();
    server.keys.check(&ear, &challenge.nonce).unwrap();
}

/// Past its bound, a relying party's oldest challenge is evicted and then redeems as
/// unknown (contraindicated); the newer ones still redeem.
#[tokio::test]
async fn the_oldest_challenge_is_evicted() {
    let server = Server::start(3, generous()).await;
    let a = server.client(TOKEN_A);
    let mut nonces = Vec::new();
    for _ in 0..4 {
        nonces.push(a.challenge(now()).await.unwrap().nonce);
    }
    let ear = a
        .appraise(&server.keys.evidence(&nonces[0]), now())
        .await
        .unwrap();
    assert_eq!(server.keys.check(&ear, &nonces[0]), CONTRAINDICATED);
    for nonce in &nonces[1..] {
        let ear = a
            .appraise(&server.keys.evidence(nonce), now())
            .await
            .unwrap();
        server.keys.check(&ear, nonce).unwrap();
    }
}

/// Two requests a minute, in a burst of 2: the third gets 429 with Retry-After (a minute,
/// rounded up), for tam-a only.
#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let rate = RateLimit {
        interval: Duration::from_secs(60),
        burst: NonZeroU32::new(2).unwrap(),
    };
    let server = Server::start(16, rate).await;
    let (a, b) = (server.client(TOKEN_A), server.client(TOKEN_B));
    let challenge = a.challenge(now()).await.unwrap();
    a.challenge(now()).await.unwrap();
    match a.challenge(now()).await {
        Err(ClientError::RateLimited {
            retry_after: Some(secs),
        }) => assert!((59..=60).contains(&secs), "{secs}"),
        other => panic!("{other:?}"),
    }
    let resp = server
        .raw(
            "verify",
            Some(&format!("Bearer {TOKEN_A}")),
            server.keys.evidence(&challenge.nonce),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    b.challenge(now()).await.unwrap();
}
