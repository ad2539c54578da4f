//! Scenario 18. Long-running Update (hours) with token/nonce state kept and timeouts.
//!
//! Hours are shortened to seconds with `teep tam serve --token-lifetime` (default 4 h). A
//! proxy keeps the Agent's Success from the TAM, as a long install or a slow network
//! would. With a 3 s lifetime, the Success delivered after the token expired changes
//! nothing at the TAM, although the device installed the TA; the next policy check sees
//! the TA in the tc-list, the TAM re-delivers it and records it on that Success. Then the
//! token state outlives the TAM process: a Success withheld while the TAM is restarted
//! (same data directory and database, the default 4 h lifetime) is accepted by the new
//! process and recorded. Wall-clock hours are not waited for.

use crate::common::deployment::{Deployment, id_text};
use crate::messages::{deliver, withheld_success};
use crate::processes::Tam;
use crate::proxy::Proxy;

const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];

/// The lifetime of the first TAM's tokens, in seconds.
const SHORT: u64 = 3;

#[test]
fn an_expired_token_is_refused_and_session_state_survives_a_tam_restart() {
    let mut d = Deployment::new();
    d.stop_tam();
    let short = SHORT.to_string();
    let tam = Tam::start(&d, "tam-long", &["--token-lifetime", &short]).with_signer(&d);
    let proxy = Proxy::forward(&tam.uri);
    d.tam_uri.clone_from(&proxy.uri());
    d.tam_data.clone_from(&tam.data);
    d.admin_url.clone_from(&tam.admin_url);
    let manifest = id_text(&["TEEP-Device", "counter", "suit"]);
    d.upload_counter(1);
    d.set_policy(&[&manifest]);
    let tee = d.start_tee();

    // The Success comes after the token expired.
    let late = withheld_success(&d, &proxy);
    std::thread::sleep(std::time::Duration::from_secs(SHORT + 2));
    let x = deliver(&d, &proxy, late);
    assert!(
        d.tam_installed().is_empty(),
        "an expired token's Success counted ({:?})",
        x.status
    );
    d.policy_check();
    assert!(d.tam_installed().contains(&(manifest.clone(), 1)));

    // The TAM restarts between the Update and its Success.
    d.upload_counter(2);
    let success = withheld_success(&d, &proxy);
    tam.process.stop();
    let again = d.spawn_tam(&d.tam_data, &[]);
    d.admin_url = again.after("admin API on ").to_owned();
    proxy.set_upstream(&format!("http://{}", again.after("listening on http://")));
    deliver(&d, &proxy, success);
    assert!(
        d.tam_installed().contains(&(manifest.clone(), 2)),
        "{:?}",
        d.tam_installed()
    );
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    assert_eq!(d.listed_sequence(&TA), Some(2), "{:?}", d.listed());
    broker.stop();
    again.stop();
    tee.stop();
}
