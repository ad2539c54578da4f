//! What the Broker logs. Its own binary, so that the subscriber is the process's only one
//! (a thread-local default would race with other tests' threads over tracing's
//! per-callsite interest cache).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use teep_broker::ScriptedAgent;

/// Log lines name the TAM, sizes and status, never the bytes relayed.
#[tokio::test]
async fn logs_one_line_per_step_without_message_contents() {
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let tam = tam(vec![
        Answer::Teep(b"SECRET-QUERY-REQUEST".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"SECRET-QUERY-RESPONSE".to_vec())));
    broker(agent).request_ta(wants_ta(None)).await.unwrap();

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let steps: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("teep/http step"))
        .collect();
    assert_eq!(steps.len(), 2, "{log}");
    assert!(
        steps[0].contains("sent=0")
            && steps[0].contains("status=200")
            && steps[0].contains("received=20"),
        "{log}"
    );
    assert!(
        steps[1].contains("sent=21")
            && steps[1].contains("status=204")
            && steps[1].contains("received=0"),
        "{log}"
    );
    assert!(
        !log.contains("SECRET") && !log.contains(&hex::encode("SECRET")),
        "{log}"
    );
}
