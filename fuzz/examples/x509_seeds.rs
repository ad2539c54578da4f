//! Writes the `x5chain` seeds of `cose_verify` into the directory given as the only
//! argument: the fixed chain's leaf and intermediate certificates (the target also reads
//! its input as either) and COSE_Sign1 messages signed by the leaf key carrying the chain
//! with and without its intermediate. Run by `make-seeds.sh`. It checks that the full chain
//! verifies against the CA anchor and the leaf alone does not, so the seeds reach past
//! chain building and into its failure paths.

use teep_cose::{AwsLcProvider, CryptoProvider, SignOptions, TrustStore, VerifyContext};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: x509_seeds DIR");
    let chain = teep_fuzz::chain();
    let signer = AwsLcProvider
        .signer(&chain.leaf_key, chain.leaf_key.default_algorithm())
        .expect("leaf signer");
    let signed = |x5chain: Vec<Vec<u8>>| {
        let opts = SignOptions {
            x5chain,
            ..SignOptions::default()
        };
        teep_cose::sign1(signer.as_ref(), b"certified payload", &opts).expect("signs")
    };
    let mut trust = TrustStore::new();
    trust.add_ca_der(chain.ca.clone()).expect("CA anchor");
    let cx = VerifyContext {
        now: Some(teep_fuzz::NOW),
        ..VerifyContext::new(&AwsLcProvider, &trust)
    };
    let full = signed(vec![chain.leaf.clone(), chain.intermediate.clone()]);
    let verified = teep_cose::verify_signed(&full, &cx).expect("the full chain verifies");
    assert_eq!(&verified.signer, chain.leaf_key.public_key());
    let leaf_only = signed(vec![chain.leaf.clone()]);
    assert!(teep_cose::verify_signed(&leaf_only, &cx).is_err());
    let seeds = [
        ("x509_leaf.der", chain.leaf.clone()),
        ("x509_intermediate.der", chain.intermediate.clone()),
        ("x509_sign1_chain.cbor", full),
        ("x509_sign1_leaf_only.cbor", leaf_only),
    ];
    for (name, bytes) in seeds {
        std::fs::write(format!("{dir}/{name}"), bytes).expect("seed written");
    }
}
