//! Attacker-built Evidence: claims sets written byte by byte and signed with an endorsed key,
//! COSE envelopes rewritten around a seen payload, and the high-S twin of an ECDSA
//! signature. Each asserts the exact finding and that no freshness state moved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use minicbor::{Decoder, Encoder};
use teep_attest::{
    CHALLENGE_LEN, Challenges, ClaimReason, ClaimsError, Cnf, CnfKeyError, Context, EatClaims,
    EvidenceError, Finding, Freshness, FreshnessError, Manifest, Outcome, Redeem, SeenEvidence,
    Status, SuitDigest, Verifier,
    claims::{EAT_NONCE_MAX, EAT_NONCE_MIN, key},
    freshness::MAX_TRACKED,
    new_challenge, sign_evidence,
};
use teep_cbor::read::{CborType, ReadErrorKind};
use teep_cose::{CoseError, Curve, PrivateKey, SignOptions, TrustStore, VerifyContext};

/// One CBOR item, written with a raw encoder.
fn item(f: impl FnOnce(&mut Encoder<&mut Vec<u8>>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut Encoder::new(&mut out));
    out
}

/// The good device's claims-set with `drop` claims left out and the `(key, value)` pairs
/// appended by hand: the map head is rewritten, the entries are raw bytes (the EAT profile
/// does not require sorted keys).
fn claims_with(keys: &Keys, drop: &[i64], extra: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut claims = good_claims(keys);
    for k in drop {
        match *k {
            key::MANIFESTS => claims.manifests = None,
            key::NONCE => claims.nonce = None,
            key::CNF => claims.cnf = None,
            other => panic!("fixture cannot drop claim {other}"),
        }
    }
    let base = claims.to_cbor().unwrap();
    let entries = base[0] - 0xa0 + extra.len() as u8;
    assert!(entries < 24, "fixture keeps a one-byte map head");
    let mut out = vec![0xa0 + entries];
    out.extend_from_slice(&base[1..]);
    for (k, v) in extra {
        out.extend(item(|e| {
            e.i64(*k).unwrap();
        }));
        out.extend_from_slice(v);
    }
    out
}

/// Signs a raw claims-set the way an attacker holding the key would: no check of the claims.
fn sign_raw(payload: &[u8], key: &PrivateKey, tagged: bool) -> Vec<u8> {
    let opts = SignOptions {
        tagged,
        ..SignOptions::default()
    };
    teep_cose::sign1(Keys::signer(key).as_ref(), payload, &opts).unwrap()
}

fn int(v: i64) -> Vec<u8> {
    item(|e| {
        e.i64(v).unwrap();
    })
}

fn appraise(v: &Verifier, evidence: &[u8], freshness: Freshness<'_>, now: u64) -> Outcome {
    let mut cx = Context {
        now,
        freshness,
        teep_key: None,
    };
    v.appraise(provider(), evidence, &mut cx)
}

fn timestamp(v: &Verifier, evidence: &[u8], seen: &mut SeenEvidence, now: u64) -> Vec<Finding> {
    appraise(v, evidence, Freshness::Timestamp(seen), now).findings
}

/// RFC 8392 §3.1.4-3.1.5 with the policy's 60 s of skew: valid while now < exp + 60 and
/// now + 60 >= nbf. Out-of-window Evidence leaves the replay cache as it was.
#[test]
fn exp_and_nbf_are_enforced_with_the_policy_skew() {
    let keys = Keys::new();
    let v = verifier(&keys);
    let now = NOW as i64;
    let cases: [(i64, i64, Option<FreshnessError>); 7] = [
        (key::EXP, now - 59, None),
        (
            key::EXP,
            now - 60,
            Some(FreshnessError::Expired {
                exp: now - 60,
                now: NOW,
            }),
        ),
        (
            key::EXP,
            i64::MIN,
            Some(FreshnessError::Expired {
                exp: i64::MIN,
                now: NOW,
            }),
        ),
        (key::EXP, i64::MAX, None),
        (key::NBF, now + 60, None),
        (
            key::NBF,
            now + 61,
            Some(FreshnessError::NotYetValid {
                nbf: now + 61,
                now: NOW,
            }),
        ),
        (
            key::NBF,
            i64::MAX,
            Some(FreshnessError::NotYetValid {
                nbf: i64::MAX,
                now: NOW,
            }),
        ),
    ];
    for (claim, value, expected) in cases {
        let evidence = sign_raw(
            &claims_with(&keys, &[], &[(claim, int(value))]),
            &keys.attestation,
            false,
        );
        let mut seen = SeenEvidence::new();
        let findings = timestamp(&v, &evidence, &mut seen, NOW);
        match expected {
            None => {
                assert_eq!(findings, vec![], "{claim} = {value}");
                assert_ne!(seen, SeenEvidence::new(), "accepted Evidence is recorded");
            }
            Some(e) => {
                assert_eq!(findings, vec![Finding::Freshness(e)], "{claim} = {value}");
                assert_eq!(seen, SeenEvidence::new(), "{claim} = {value}: cache moved");
            }
        }
    }
}

/// A flood of challenge requests (every empty POST to a TAM asks for one) neither stops
/// the Verifier from issuing challenges nor invalidates one issued after the flood: when
/// MAX_TRACKED are outstanding the oldest is forgotten. The flood's first challenges go
/// (UnknownChallenge), its latest and a device's after it redeem; a spent one stays spent.
#[test]
fn a_flood_of_challenges_forgets_the_oldest_and_never_refuses() {
    let mut challenges = Challenges::new(300);
    let first = challenges.issue(provider(), NOW).unwrap();
    let redeemed = challenges.issue(provider(), NOW).unwrap();
    challenges.redeem(&redeemed, NOW).unwrap();
    let flood: Vec<Vec<u8>> = (0..MAX_TRACKED)
        .map(|_| challenges.issue(provider(), NOW).unwrap())
        .collect();
    let device = challenges.issue(provider(), NOW + 1).unwrap();
    assert_eq!(
        challenges.redeem(&first, NOW + 1),
        Err(FreshnessError::UnknownChallenge)
    );
    assert_eq!(
        challenges.redeem(&flood[0], NOW + 1),
        Err(FreshnessError::UnknownChallenge)
    );
    assert_eq!(challenges.redeem(&device, NOW + 1), Ok(()));
    assert_eq!(challenges.redeem(&flood[MAX_TRACKED - 1], NOW + 1), Ok(()));
    assert_eq!(
        challenges.redeem(&redeemed, NOW + 1),
        Err(FreshnessError::Replayed)
    );
    // Expired ones are forgotten on the next issue, spent ones included.
    let later = challenges.issue(provider(), NOW + 302).unwrap();
    assert_eq!(
        challenges.redeem(&flood[1000], NOW + 302),
        Err(FreshnessError::UnknownChallenge)
    );
    assert_eq!(challenges.redeem(&later, NOW + 302), Ok(()));
}

/// An expired Evidence carrying a live challenge does not redeem it: the genuine answer
/// that follows still goes through.
#[test]
fn expired_evidence_does_not_burn_its_challenge() {
    let keys = Keys::new();
    let v = verifier(&keys);
    let mut challenges = Challenges::new(300);
    let nonce = challenges.issue(provider(), NOW).unwrap();
    let nonce_item = item(|e| {
        e.bytes(&nonce).unwrap();
    });
    let expired = sign_raw(
        &claims_with(
            &keys,
            &[key::NONCE],
            &[
                (key::NONCE, nonce_item.clone()),
                (key::EXP, int(NOW as i64 - 61)),
            ],
        ),
        &keys.attestation,
        false,
    );
    let before = challenges.clone();
    let o = appraise(&v, &expired, Freshness::Issued(&mut challenges), NOW);
    assert_eq!(
        o.findings,
        vec![Finding::Freshness(FreshnessError::Expired {
            exp: NOW as i64 - 61,
            now: NOW
        })]
    );
    assert_eq!(o.status(), Status::Contraindicated);
    assert_eq!(challenges, before);
    let genuine = sign_raw(
        &claims_with(&keys, &[key::NONCE], &[(key::NONCE, nonce_item)]),
        &keys.attestation,
        false,
    );
    let o = appraise(&v, &genuine, Freshness::Issued(&mut challenges), NOW);
    assert_eq!(o.findings, vec![]);
}

/// exp and nbf are NumericDates; we take integers only (the TEEP EAT profile's preferred
/// serialization gives no reason for a float second).
#[test]
fn float_exp_is_malformed() {
    let keys = Keys::new();
    let float = item(|e| {
        e.f64(1_500_000_000.5).unwrap();
    });
    let evidence = sign_raw(
        &claims_with(&keys, &[], &[(key::EXP, float)]),
        &keys.attestation,
        false,
    );
    let mut seen = SeenEvidence::new();
    assert_eq!(
        timestamp(&verifier(&keys), &evidence, &mut seen, NOW),
        vec![Finding::Malformed(EvidenceError::Claims(
            ClaimsError::InvalidClaim {
                key: key::EXP,
                reason: ClaimReason::Read(ReadErrorKind::Expected(CborType::Int))
            }
        ))]
    );
    assert_eq!(seen, SeenEvidence::new());
}

/// RFC 9711: `manifests` and `measurements` hold one or more entries.
#[test]
fn empty_manifests_are_malformed_and_never_signed() {
    let keys = Keys::new();
    let v = verifier(&keys);
    let empty = vec![0x80];
    for claim in [key::MANIFESTS, key::MEASUREMENTS] {
        let evidence = sign_raw(
            &claims_with(&keys, &[key::MANIFESTS], &[(claim, empty.clone())]),
            &keys.attestation,
            false,
        );
        let mut seen = SeenEvidence::new();
        let o = appraise(&v, &evidence, Freshness::Timestamp(&mut seen), NOW);
        assert_eq!(
            o.findings,
            vec![Finding::Malformed(EvidenceError::Claims(
                ClaimsError::InvalidClaim {
                    key: claim,
                    reason: ClaimReason::Read(ReadErrorKind::Size {
                        min: 1,
                        max: u64::MAX,
                        found: 0
                    })
                }
            ))],
            "{claim}"
        );
        assert_eq!(o.status(), Status::Contraindicated);
        assert_eq!(seen, SeenEvidence::new());
    }
    let mut claims = good_claims(&keys);
    claims.manifests = Some(vec![]);
    assert_eq!(
        sign_evidence(&claims, Keys::signer(&keys.attestation).as_ref()),
        Err(EvidenceError::Claims(ClaimsError::InvalidClaim {
            key: key::MANIFESTS,
            reason: ClaimReason::Read(ReadErrorKind::Size {
                min: 1,
                max: u64::MAX,
                found: 0
            })
        }))
    );
}

/// The reference digests are SHA-256: the same 32 bytes labelled SHA-384 (-43) or
/// SHAKE128 (-18) are another statement and match nothing.
#[test]
fn a_digest_matches_only_under_its_own_algorithm() {
    let keys = Keys::new();
    let v = verifier(&keys);
    for alg in [-43, -18, 0] {
        let mut claims = good_claims(&keys);
        claims.manifests = Some(vec![Manifest {
            body: teep_attest::ManifestBody::SuitReference(teep_attest::SuitReference {
                uri: "https://example.com/manifest.cbor".into(),
                digest: SuitDigest {
                    algorithm: alg,
                    bytes: TC_DIGEST.to_vec(),
                },
            }),
            ..Manifest::suit_reference("", TC_DIGEST)
        }]);
        let o = appraise(
            &v,
            &sign(&claims, &keys.attestation),
            Freshness::Nonce(&NONCE),
            NOW,
        );
        assert_eq!(
            o.findings,
            vec![Finding::UnknownComponent(TC_DIGEST.to_vec())],
            "alg {alg}"
        );
        assert_eq!(o.status(), Status::Warning);
    }
}

/// The four parts of a COSE_Sign1 (tag 18 optional), each as its raw CBOR item.
fn parts(cose: &[u8]) -> [Vec<u8>; 4] {
    let body = cose.strip_prefix(&[0xd2]).unwrap_or(cose);
    let mut d = Decoder::new(body);
    assert_eq!(d.array().unwrap(), Some(4));
    std::array::from_fn(|_| {
        let start = d.position();
        d.skip().unwrap();
        body[start..d.position()].to_vec()
    })
}

fn join(tag: bool, parts: &[Vec<u8>; 4]) -> Vec<u8> {
    let mut out = if tag { vec![0xd2, 0x84] } else { vec![0x84] };
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// n - s for a P-256 ECDSA signature r || s: the other signature over the same message.
fn high_s_twin(signature_item: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let sig = Decoder::new(signature_item).bytes().unwrap().to_vec();
    assert_eq!(sig.len(), 64);
    let mut twin = sig[..32].to_vec();
    let mut s = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        s[i] = d as u8;
    }
    assert_eq!(borrow, 0, "s < n");
    twin.extend_from_slice(&s);
    assert_ne!(twin, sig);
    item(|e| {
        e.bytes(&twin).unwrap();
    })
}

/// Replays are recognised by the signed claims, not the wire bytes: the accepted Evidence
/// re-tagged, with its kid dropped or an extra unprotected header, or with the high-S twin
/// of its signature, is each a replay, although each of them verifies on its own.
#[test]
fn rewrapped_and_resigned_copies_of_seen_evidence_are_replays() {
    let keys = Keys::new();
    let v = verifier(&keys);
    let original = sign(&good_claims(&keys), &keys.attestation);
    let p = parts(&original);
    let unprotected_kid_dropped = vec![0xa0];
    let extra_header = {
        let mut h = vec![0xa2];
        h.extend_from_slice(&p[1][1..]); // the kid entry
        h.extend(item(|e| {
            e.u8(99).unwrap().str("x").unwrap();
        }));
        h
    };
    let copies = [
        ("tag 18", join(true, &p)),
        (
            "tag removed",
            join(false, &parts(&join(true, &p))), // same as the original
        ),
        (
            "no kid",
            join(
                false,
                &[
                    p[0].clone(),
                    unprotected_kid_dropped,
                    p[2].clone(),
                    p[3].clone(),
                ],
            ),
        ),
        (
            "extra unprotected header",
            join(
                false,
                &[p[0].clone(), extra_header, p[2].clone(), p[3].clone()],
            ),
        ),
        (
            "high-S signature",
            join(
                false,
                &[p[0].clone(), p[1].clone(), p[2].clone(), high_s_twin(&p[3])],
            ),
        ),
    ];
    let mut seen = SeenEvidence::new();
    assert_eq!(timestamp(&v, &original, &mut seen, NOW), vec![]);
    let after_first = seen.clone();
    for (name, copy) in &copies {
        // Each copy is valid Evidence in its own right...
        assert_eq!(
            timestamp(&v, copy, &mut SeenEvidence::new(), NOW),
            vec![],
            "{name}"
        );
        // ...and the same Evidence as the one already seen.
        assert_eq!(
            timestamp(&v, copy, &mut seen, NOW),
            vec![Finding::Freshness(FreshnessError::Replayed)],
            "{name}"
        );
        assert_eq!(seen, after_first, "{name}: a replay changed the cache");
    }
    // A kid naming no endorsed key is no way around it either.
    let other_kid = item(|e| {
        e.map(1).unwrap().u8(4).unwrap().bytes(&[7; 32]).unwrap();
    });
    let rekeyed = join(
        false,
        &[p[0].clone(), other_kid, p[2].clone(), p[3].clone()],
    );
    assert_eq!(
        timestamp(&v, &rekeyed, &mut seen, NOW),
        vec![Finding::UnknownAttestationKey]
    );
    assert_eq!(seen, after_first);
}

/// Every challenge we issue fits `eat_nonce`, so an Agent can always return it.
#[test]
fn issued_challenges_fit_eat_nonce() {
    assert!((EAT_NONCE_MIN..=EAT_NONCE_MAX).contains(&CHALLENGE_LEN));
    let a = new_challenge(provider()).unwrap();
    let b = new_challenge(provider()).unwrap();
    assert_eq!((a.len(), b.len()), (CHALLENGE_LEN, CHALLENGE_LEN));
    assert_ne!(a, b);
    let mut challenges = Challenges::new(300);
    let issued = challenges.issue(provider(), NOW).unwrap();
    assert_eq!(issued.len(), CHALLENGE_LEN);
    let keys = Keys::new();
    let mut claims = good_claims(&keys);
    claims.nonce = Some(issued);
    let evidence = sign_evidence(&claims, Keys::signer(&keys.attestation).as_ref()).unwrap();
    let o = appraise(
        &verifier(&keys),
        &evidence,
        Freshness::Issued(&mut challenges),
        NOW,
    );
    assert_eq!(o.findings, vec![]);
}

/// A TEEP challenge of 65..=512 bytes cannot come back as eat_nonce: we refuse to sign it,
/// and the Verifier rejects Evidence that carries it without touching its challenges.
#[test]
fn a_challenge_longer_than_eat_nonce_cannot_be_answered() {
    let keys = Keys::new();
    let long = vec![0x5a; EAT_NONCE_MAX + 1];
    let mut claims = good_claims(&keys);
    claims.nonce = Some(long.clone());
    let too_long = EvidenceError::Claims(ClaimsError::InvalidClaim {
        key: key::NONCE,
        reason: ClaimReason::Read(ReadErrorKind::Size {
            min: 8,
            max: 64,
            found: 65,
        }),
    });
    assert_eq!(
        sign_evidence(&claims, Keys::signer(&keys.attestation).as_ref()),
        Err(too_long.clone())
    );
    let nonce_item = item(|e| {
        e.bytes(&long).unwrap();
    });
    let evidence = sign_raw(
        &claims_with(&keys, &[key::NONCE], &[(key::NONCE, nonce_item)]),
        &keys.attestation,
        false,
    );
    let mut challenges = Challenges::new(300);
    challenges.issue(provider(), NOW).unwrap();
    let before = challenges.clone();
    let o = appraise(
        &verifier(&keys),
        &evidence,
        Freshness::Issued(&mut challenges),
        NOW,
    );
    assert_eq!(o.findings, vec![Finding::Malformed(too_long)]);
    assert_eq!(challenges, before);
}

fn verify_with(key: &teep_cose::PublicKey, cose: &[u8]) -> Result<Vec<u8>, CoseError> {
    let mut trust = TrustStore::new();
    trust.add_key(key.clone());
    teep_cose::verify_sign1(cose, &VerifyContext::new(provider(), &trust)).map(|v| v.payload)
}

/// On first contact the TAM learns the Agent's key from cnf and verifies the QueryResponse
/// that carried the Evidence with it; a message by any other key fails.
#[test]
fn cnf_cose_key_verifies_the_carrying_message() {
    let keys = Keys::new();
    let mut claims = good_claims(&keys);
    claims.cnf = Some(Cnf::CoseKey(keys.teep.public_key().to_cose_key_bytes()));
    let o = appraise(
        &verifier(&keys),
        &sign(&claims, &keys.attestation),
        Freshness::Nonce(&NONCE),
        NOW,
    );
    assert_eq!(o.status(), Status::Affirming);
    let cnf_key = o.cnf_key().unwrap();
    assert_eq!(&cnf_key, keys.teep.public_key());

    let message = b"a QueryResponse".to_vec();
    let by_agent = sign_raw(&message, &keys.teep, true);
    assert_eq!(verify_with(&cnf_key, &by_agent), Ok(message.clone()));
    let impostor = PrivateKey::generate(Curve::P256).unwrap();
    let by_impostor = sign_raw(&message, &impostor, true);
    assert_eq!(
        verify_with(&cnf_key, &by_impostor),
        Err(CoseError::UntrustedSigner)
    );
    // Without a kid to go by, the cnf key is tried, and does not verify it either.
    let no_kid = SignOptions {
        kid: false,
        ..SignOptions::default()
    };
    let anonymous = teep_cose::sign1(Keys::signer(&impostor).as_ref(), &message, &no_kid).unwrap();
    assert_eq!(
        verify_with(&cnf_key, &anonymous),
        Err(CoseError::UntrustedSigner)
    );
}

#[test]
fn cnf_without_a_key_says_why() {
    let keys = Keys::new();
    let v = verifier(&keys);
    let kid = keys.teep.public_key().thumbprint().to_vec();
    let o = appraise(
        &v,
        &sign(&good_claims(&keys), &keys.attestation),
        Freshness::Nonce(&NONCE),
        NOW,
    );
    assert_eq!(o.cnf_key(), Err(CnfKeyError::KidOnly(kid)));
    // Forged Evidence offers no key, whatever its cnf says.
    let mut claims = good_claims(&keys);
    claims.cnf = Some(Cnf::CoseKey(keys.teep.public_key().to_cose_key_bytes()));
    let forged = appraise(
        &v,
        &sign(&claims, &keys.teep),
        Freshness::Nonce(&NONCE),
        NOW,
    );
    assert_eq!(forged.cnf_key(), Err(CnfKeyError::Unverified));
    let mut claims = good_claims(&keys);
    claims.cnf = None;
    assert_eq!(claims.cnf_key(), Err(CnfKeyError::Missing));
}

/// A cnf COSE_Key that is no usable key ({1: 2}: EC2 without curve or coordinates) is
/// rejected when the claims are decoded, so a decoded cnf key always works.
#[test]
fn unusable_cnf_cose_key_is_malformed() {
    let keys = Keys::new();
    let cnf = vec![0xa1, 0x01, 0xa1, 0x01, 0x02];
    let evidence = sign_raw(
        &claims_with(&keys, &[key::CNF], &[(key::CNF, cnf)]),
        &keys.attestation,
        false,
    );
    let o = appraise(&verifier(&keys), &evidence, Freshness::Nonce(&NONCE), NOW);
    assert_eq!(
        o.findings,
        vec![Finding::Malformed(EvidenceError::Claims(
            ClaimsError::InvalidClaim {
                key: key::CNF,
                reason: ClaimReason::UnusableCnfKey
            }
        ))]
    );
    assert_eq!(o.cnf_key(), Err(CnfKeyError::Unverified));
}

/// RFC 9711 wraps a CBOR manifest body in a byte string: we write it so, and read both it
/// and the inline form of the TEEP draft's D.2 example.
#[test]
fn manifest_bodies_are_written_wrapped_and_read_both_ways() {
    let keys = Keys::new();
    let manifest = Manifest::suit_reference("u", [0xa7; 32]);
    let reference = item(|e| {
        e.array(2)
            .unwrap()
            .str("u")
            .unwrap()
            .array(2)
            .unwrap()
            .i64(-16)
            .unwrap()
            .bytes(&[0xa7; 32])
            .unwrap();
    });
    let entry = |body: &[u8]| {
        let mut list = vec![0x81, 0x82, 0x18, 60];
        list.extend_from_slice(body);
        list
    };
    let wrapped = entry(&item(|e| {
        e.bytes(&reference).unwrap();
    }));
    let inline = entry(&reference);
    let mut claims = good_claims(&keys);
    claims.manifests = Some(vec![manifest.clone()]);
    let encoded = claims.to_cbor().unwrap();
    assert!(
        encoded.windows(wrapped.len()).any(|w| w == wrapped),
        "manifests not written bstr-wrapped"
    );
    for list in [wrapped, inline] {
        let bytes = claims_with(&keys, &[key::MANIFESTS], &[(key::MANIFESTS, list)]);
        let decoded = EatClaims::from_cbor(&bytes).unwrap();
        assert_eq!(decoded.manifests, Some(vec![manifest.clone()]));
    }
}

/// Evidence signed by an endorsed key but rejected on identity (another device's ueid, a
/// foreign profile) redeems no challenge and enters no replay cache.
#[test]
fn identity_rejections_leave_freshness_state_alone() {
    let keys = Keys::new();
    let v = verifier(&keys);
    type Mutation = fn(&mut EatClaims);
    let mutations: [(Mutation, Finding); 2] = [
        (
            |c| c.ueid = Some(vec![2; 17]),
            Finding::KeyNotEndorsedForDevice,
        ),
        (
            |c| c.profile = Some("urn:example:other".into()),
            Finding::WrongProfile,
        ),
    ];
    for (mutate, finding) in mutations {
        let mut challenges = Challenges::new(300);
        let mut claims = good_claims(&keys);
        claims.nonce = Some(challenges.issue(provider(), NOW).unwrap());
        let genuine = sign(&claims, &keys.attestation);
        mutate(&mut claims);
        let rejected = sign(&claims, &keys.attestation);
        let before = challenges.clone();
        let o = appraise(&v, &rejected, Freshness::Issued(&mut challenges), NOW);
        assert_eq!(o.findings, vec![finding.clone()]);
        assert_eq!(challenges, before, "{finding:?} redeemed the challenge");
        let mut seen = SeenEvidence::new();
        assert_eq!(timestamp(&v, &rejected, &mut seen, NOW), vec![finding]);
        assert_eq!(seen, SeenEvidence::new());
        // The device's own answer to the challenge still counts.
        let o = appraise(&v, &genuine, Freshness::Issued(&mut challenges), NOW);
        assert_eq!(o.findings, vec![]);
    }
}
