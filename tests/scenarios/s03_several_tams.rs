//! Scenario 3. The RequestPolicyCheck loop over several trusted TAMs (one URI per call).
//!
//! How: two TAMs (`teep tam serve` twice, one data directory each), each with its own TA
//! (the counter at TAM A, a second TA at TAM B, both by the one TC signer) in the device's
//! policy, each behind a recording proxy; one `teep tee serve` trusting both TAM keys and
//! contacting both (`--tam A --tam B`). One `teep device run --once` reports two completed
//! exchanges; the proxies show that each TAM got exactly one whole session (empty POST ...
//! 204) and that A's ended before B's began (the Agent names one URI per RequestPolicyCheck
//! answer). The device lists both TAs; each TAM records only its own. The failure case: while
//! TAM B's connections are cut, the same check reaches A only (the command exits 1 and names
//! one TAM not reached), B's TA is not installed and B records nothing; once B is back the
//! next check installs it.
//!
//! Evidence encryption (draft §12): the TEE maps each TAM key to that TAM's encryption key
//! (`--tam-encryption-key TAMKEY=KEYFILE`, twice), so each TAM gets Evidence it can decrypt
//! (its Verifier admits the device and its TA installs); Evidence encrypted to the other
//! TAM's key would not open (`teep-agent`'s engine test pins which key each TAM gets).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::deployment::{COUNTER_V1, Deployment, id_text};
use crate::processes::{Tam, start_tee_with};
use crate::proxy::{Action, Proxy};
use crate::s01_session::{TA, ta_manifest};

const OTHER: [&str; 3] = ["TEEP-Device", "other", "ta"];

/// How many sessions the exchanges hold (each opens with an empty POST).
fn sessions(exchanges: &[crate::proxy::Exchange]) -> usize {
    exchanges.iter().filter(|e| e.request.is_empty()).count()
}

#[test]
fn s03_one_policy_check_visits_every_trusted_tam() {
    let d = Deployment::new();
    d.upload_counter(1);
    d.set_policy(&[&ta_manifest()]);
    let b = Tam::start(&d, "tam-b", &[]).with_signer(&d);
    d.create(&OTHER, 1, &[], COUNTER_V1, "other.suit");
    b.admin(&d, &["tc", "add", "other.suit"]);
    let other_manifest = id_text(&["TEEP-Device", "other", "suit"]);
    b.admin(
        &d,
        &[
            "policy",
            "set",
            "--device",
            &d.device_id,
            "--tc",
            &other_manifest,
        ],
    );

    let proxy_a = Proxy::forward(&d.tam_uri);
    let b_down = Arc::new(AtomicBool::new(true));
    let down = Arc::clone(&b_down);
    let proxy_b = Proxy::start(Some(&b.uri), move |_| {
        if down.load(Ordering::SeqCst) {
            Action::Cut
        } else {
            Action::Forward
        }
    });
    let enc = |dir: &str| format!("{dir}/tam-esp256.pub.pem={dir}/tam-encryption.pub.pem");
    let (enc_a, enc_b) = (enc(&d.tam_data), enc(&b.data));
    let _tee = start_tee_with(
        &d,
        &[&d.tam_data, &b.data],
        &[&proxy_a.uri(), &proxy_b.uri()],
        &[
            "--tam-encryption-key",
            &enc_a,
            "--tam-encryption-key",
            &enc_b,
        ],
    );
    let once = |tam: &str| {
        d.output(&[
            "device",
            "run",
            "--once",
            "--allow-plain-http",
            "--tam",
            tam,
            "--state-dir",
            &d.dev_dir,
        ])
    };

    // TAM B unreachable: A's session completes, B is reported not reached (exit 1).
    let out = once(&proxy_a.uri());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 TAM exchange(s) completed, 1 TAM(s) not reached"),
        "{stdout}"
    );
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    assert_eq!(b.installed(&d), vec![]);
    assert!(proxy_b.exchanges().iter().all(|e| e.status.is_none()));
    let (a_before, b_before) = (proxy_a.exchanges().len(), proxy_b.exchanges().len());

    // B back: the next check visits both TAMs, one whole session each; A has nothing new.
    b_down.store(false, Ordering::SeqCst);
    let out = once(&proxy_a.uri());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("2 TAM exchange(s) completed, 0 TAM(s) not reached"),
        "{stdout}"
    );
    let (a, b_ex) = (
        &proxy_a.exchanges()[a_before..],
        &proxy_b.exchanges()[b_before..],
    );
    assert_eq!((sessions(a), sessions(b_ex)), (1, 1), "{a:?}\n{b_ex:?}");
    assert_eq!(b_ex.last().unwrap().status, Some(204));
    assert_eq!(b_ex.len(), 3, "QueryRequest, Update, 204: {b_ex:?}");
    // One URI per call: A's session was over before B's began.
    assert!(a.last().unwrap().ended <= b_ex[0].started);

    let broker = d.start_broker(300);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    assert_eq!(d.listed_sequence(&OTHER), Some(1), "{:?}", d.listed());
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    assert_eq!(b.installed(&d), vec![(other_manifest, 1)]);
    broker.stop();
}
