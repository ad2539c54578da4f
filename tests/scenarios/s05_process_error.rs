//! Scenario 5. The ProcessError path (network and HTTP failures) and the Agent's retry policy.
//!
//! How: the deployment's TEE contacts the TAM through the scripted proxy (`proxy.rs`),
//! which fails the exchange in each way in turn; each policy check is one `teep device run
//! --once`, and a long-running Broker serves `teep device list`. Asserted for each failure:
//! which POSTs the Broker repeated (the proxy's record), the command's exit status and
//! report, the TEE's log of the ProcessError it got, the device's TAs and the TAM's record.
//! 1. HTTP 503: not repeated (one POST); ProcessError; nothing installed, the TAM has no
//!    record of the device.
//! 2. The TAM process down (stopped; the proxy closes each connection it cannot forward):
//!    the empty opening POST, which changes nothing at the TAM, is repeated three times with
//!    growing waits (the Broker logs each `teep/http retry`), then ProcessError.
//! 3. The TAM restarted on its data directory, the first connection still cut: the Broker's
//!    retry reaches it and the session completes within the same check; the TA is installed
//!    and the TAM records it.
//! 4. A lost answer mid-session: the QueryResponse is delivered but the Update that answers it
//!    is cut. A POST that may have been delivered is never repeated (one attempt): the Agent
//!    gets ProcessError and keeps version 1; the next check completes the update to 2.
//!
//! 5. A refused connection (nothing listens on the TAM's port; a TEE contacting it directly):
//!    never delivered, so repeated for any POST, three times, then ProcessError; once a TAM
//!    listens on that port (the same data directory), the next check completes.
//!
//! The Agent itself never repeats a failed exchange (its ProcessError only records the
//! failure, which also blocks an unsolicited QueryResponse to that TAM, §11); the next
//! policy check is its retry.

use crate::common::deployment::Deployment;
use crate::processes::{Tam, installed_of, start_tee_with};
use crate::proxy::{Action, Proxy};
use crate::s01_session::{TA, deployment_behind, ta_manifest};

/// One `teep device run --once`: its exit code, standard output and standard error.
fn once(d: &Deployment) -> (Option<i32>, String, String) {
    let out = d.output(&d.once_args());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How many ProcessErrors the TEE has logged (in all its log files).
fn process_errors(d: &Deployment) -> usize {
    std::fs::read_dir(d.work())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tee-"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .matches("exchange with the TAM failed")
                .count()
        })
        .sum()
}

const NOT_REACHED: &str = "0 TAM exchange(s) completed, 1 TAM(s) not reached";
const DONE: &str = "1 TAM exchange(s) completed, 0 TAM(s) not reached";

#[test]
fn s05_failures_give_process_error_and_the_session_completes_once_the_tam_is_up() {
    let (mut d, proxy, direct) = deployment_behind(|_| Proxy::scripted(Action::Status(503)));
    let _tee = d.start_tee();

    // 1. 503: one POST, no repeat; ProcessError; nothing anywhere.
    let (code, out, _) = once(&d);
    assert_eq!((code, out.contains(NOT_REACHED)), (Some(1), true), "{out}");
    assert_eq!(proxy.exchanges().len(), 1);
    assert_eq!(process_errors(&d), 1);
    assert_eq!(
        installed_of(&d.admin(&["devices", "--json"]), &d.device_id),
        vec![]
    );

    // 2. The TAM down: the opening POST is tried four times in all, then ProcessError.
    d.stop_tam();
    proxy.set_upstream(&direct);
    proxy.set(vec![], Action::Forward);
    let (code, out, err) = once(&d);
    assert_eq!((code, out.contains(NOT_REACHED)), (Some(1), true), "{out}");
    let tried = &proxy.exchanges()[1..];
    assert_eq!(tried.len(), 4, "{tried:?}");
    assert!(
        tried
            .iter()
            .all(|e| e.request.is_empty() && e.status.is_none())
    );
    assert_eq!(err.matches("teep/http retry").count(), 3, "{err}");
    assert_eq!(process_errors(&d), 2);

    // 3. Restarted on its data directory; one more cut, which the Broker's retry absorbs.
    let tam = Tam::start(&d, "tam", &[]);
    d.admin_url.clone_from(&tam.admin_url);
    proxy.set_upstream(&tam.uri);
    proxy.set(vec![Action::Cut], Action::Forward);
    let before = proxy.exchanges().len();
    let (code, out, err) = once(&d);
    assert_eq!((code, out.contains(DONE)), (Some(0), true), "{out}{err}");
    let session: Vec<_> = proxy.exchanges()[before..]
        .iter()
        .map(|e| (e.request.is_empty(), e.status))
        .collect();
    assert_eq!(
        session,
        [
            (true, None),
            (true, Some(200)),
            (false, Some(200)),
            (false, Some(204))
        ]
    );
    assert_eq!(
        process_errors(&d),
        2,
        "no ProcessError for an absorbed failure"
    );
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    let broker = d.start_broker(300);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());

    // 4. Version 2; the Update answering the QueryResponse is lost: no repeat of that POST.
    d.upload_counter(2);
    proxy.set(vec![Action::Forward, Action::Cut], Action::Forward);
    let before = proxy.exchanges().len();
    let (code, out, _) = once(&d);
    assert_eq!((code, out.contains(NOT_REACHED)), (Some(1), true), "{out}");
    let lost = &proxy.exchanges()[before..];
    assert_eq!(
        lost.len(),
        2,
        "the cut QueryResponse POST was repeated: {lost:?}"
    );
    assert!(!lost[1].request.is_empty() && lost[1].status.is_none());
    assert_eq!(process_errors(&d), 3);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    let (code, out, _) = once(&d);
    assert_eq!((code, out.contains(DONE)), (Some(0), true), "{out}");
    assert_eq!(d.listed_sequence(&TA), Some(2), "{:?}", d.listed());
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 2)]);
    broker.stop();
}

#[test]
fn s05_a_refused_connection_is_retried_then_the_tam_comes_up() {
    let mut d = Deployment::new();
    d.upload_counter(1);
    d.set_policy(&[&ta_manifest()]);
    d.stop_tam();
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    d.tam_uri = format!("http://{port}/tam");
    let _tee = start_tee_with(&d, &[&d.tam_data], &[&d.tam_uri], &[]);

    let (code, out, err) = once(&d);
    assert_eq!((code, out.contains(NOT_REACHED)), (Some(1), true), "{out}");
    assert_eq!(err.matches("teep/http retry").count(), 3, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    assert_eq!(process_errors(&d), 1);

    let tam = Tam::start_on(&d, &port.to_string(), "tam", &[]);
    d.admin_url.clone_from(&tam.admin_url);
    let (code, out, err) = once(&d);
    assert_eq!((code, out.contains(DONE)), (Some(0), true), "{out}{err}");
    assert_eq!(d.tam_installed(), vec![(ta_manifest(), 1)]);
    let broker = d.start_broker(300);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    broker.stop();
}
