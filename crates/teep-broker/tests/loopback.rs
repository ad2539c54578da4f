//! The Broker's TEEP/HTTP exchanges against scripted TAMs on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use teep_broker::{
    AgentAnswer, AgentCall, AgentError, Broker, BrokerConfig, BrokerError, Outcome, PolicyReport,
    ScriptedAgent, TransportError,
};
use tokio::net::TcpListener;

/// Empty POST → QueryRequest to the Agent → its QueryResponse POSTed → Update to the Agent
/// → its Success POSTed → 204 ends. The Agent's TAM URI wins over the app's hint; the
/// headers are the draft's; a cookie set by the TAM is never sent back.
#[tokio::test]
async fn whole_exchange_relays_every_message_until_no_content() {
    let tam = tam(vec![
        Answer::Teep(b"query-request".to_vec()),
        Answer::Raw(Some("Application/TEEP+CBOR; v=1"), b"update".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"query-response".to_vec())))
        .reply(Ok(Some(b"success".to_vec())));
    let broker = broker(agent);

    let hint = "https://hint.invalid/tam";
    let outcome = broker.request_ta(wants_ta(Some(hint))).await.unwrap();

    assert_eq!(outcome, Outcome::Completed { exchanges: 1 });
    let uri = tam.uri();
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::RequestTa(wants_ta(Some(hint))),
            relayed(&uri, b"query-request"),
            relayed(&uri, b"update"),
        ]
    );
    let seen = tam.seen();
    let bodies: Vec<&[u8]> = seen.iter().map(|s| s.body.as_slice()).collect();
    assert_eq!(bodies, [&b""[..], b"query-response", b"success"]);
    let opening = &seen[0];
    assert_eq!(opening.accept.as_deref(), Some(TEEP));
    assert_eq!(opening.content_type, None);
    assert_eq!(opening.content_length.as_deref(), Some("0"));
    for message in &seen[1..] {
        assert_eq!(message.accept.as_deref(), Some(TEEP));
        assert_eq!(message.content_type.as_deref(), Some(TEEP));
    }
    assert!(seen.iter().all(|s| !s.cookie), "cookie sent back: {seen:?}");
}

/// The Agent's first message (an unsolicited QueryResponse) is POSTed instead of an empty
/// body; when the TAM answers it with no content (it dropped it), the Broker starts one
/// ordinary session with an empty POST, so the app's request is still served.
#[tokio::test]
async fn agent_first_message_is_posted_instead_of_an_empty_body() {
    let tam = tam(vec![
        Answer::NoContent,
        Answer::Teep(b"query-request".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_request_ta(Ok(AgentAnswer::Contact {
            tam_uri: tam.uri(),
            message: Some(b"query-response".to_vec()),
        }))
        .reply(Ok(Some(b"query-response-2".to_vec())));
    let broker = broker(agent);

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    let seen = tam.seen();
    let bodies: Vec<&[u8]> = seen.iter().map(|s| s.body.as_slice()).collect();
    assert_eq!(bodies, [&b"query-response"[..], b"", b"query-response-2"]);
    assert_eq!(seen[0].content_type.as_deref(), Some(TEEP));
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::RequestTa(wants_ta(None)),
            relayed(&tam.uri(), b"query-request"),
        ]
    );
}

/// The retry is one empty POST only: a TAM that answers a solicited message with no content
/// later, or answers the unsolicited one with a message, is never sent an extra empty POST.
#[tokio::test]
async fn an_answered_unsolicited_query_response_is_not_followed_by_an_empty_post() {
    let tam = tam(vec![Answer::Teep(b"update".to_vec()), Answer::NoContent]).await;
    let agent = ScriptedAgent::new()
        .on_request_ta(Ok(AgentAnswer::Contact {
            tam_uri: tam.uri(),
            message: Some(b"query-response".to_vec()),
        }))
        .reply(Ok(Some(b"success".to_vec())));
    let broker = broker(agent);

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    let bodies: Vec<Vec<u8>> = tam.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies, [b"query-response".to_vec(), b"success".to_vec()]);
}

#[tokio::test]
async fn no_content_on_the_first_post_ends_the_exchange() {
    for end in [Answer::NoContent, Answer::Raw(None, Vec::new())] {
        let tam = tam(vec![end.clone()]).await;
        let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

        assert_eq!(
            broker.request_ta(wants_ta(None)).await,
            Ok(Outcome::Completed { exchanges: 1 }),
            "{end:?}"
        );
        assert_eq!(
            broker.agent().calls(),
            [AgentCall::RequestTa(wants_ta(None))]
        );
        assert_eq!(tam.seen().len(), 1);
    }
}

#[tokio::test]
async fn agent_with_nothing_to_do_contacts_no_tam() {
    let broker = broker(ScriptedAgent::new().on_request_ta(Ok(AgentAnswer::Nothing)));
    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::NothingToDo)
    );
    assert_eq!(
        broker.agent().calls(),
        [AgentCall::RequestTa(wants_ta(None))]
    );
}

#[tokio::test]
async fn unrequest_runs_the_exchange_the_agent_asks_for() {
    let tam = tam(vec![
        Answer::Teep(b"query-request".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_unrequest_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"query-response-unneeded".to_vec())));
    let broker = broker(agent);

    assert_eq!(
        broker.unrequest_ta(ta()).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::UnrequestTa(ta()),
            relayed(&tam.uri(), b"query-request")
        ]
    );
    assert_eq!(tam.seen()[1].body, b"query-response-unneeded");
}

/// The TAM is down for the first attempts and comes up while the Broker backs off.
#[tokio::test]
async fn tam_down_then_up_is_reached_by_a_retry() {
    let addr = closed_port().await;
    let uri = format!("http://{addr}/tam");
    let mut cfg = config();
    cfg.http.retries = 6;
    cfg.http.backoff_initial = Duration::from_millis(50);
    cfg.http.backoff_max = Duration::from_millis(200);
    let agent = ScriptedAgent::new().on_request_ta(contact(&uri));
    let broker = Arc::new(Broker::new(agent, cfg).unwrap());
    let running = tokio::spawn({
        let broker = broker.clone();
        async move { broker.request_ta(wants_ta(None)).await }
    });

    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(!running.is_finished());
    let tam = tam_on(
        TcpListener::bind(addr).await.unwrap(),
        vec![Answer::NoContent],
        Answer::NoContent,
    )
    .await;

    assert_eq!(
        running.await.unwrap(),
        Ok(Outcome::Completed { exchanges: 1 })
    );
    assert_eq!(tam.seen().len(), 1);
    assert_eq!(
        broker.agent().calls(),
        [AgentCall::RequestTa(wants_ta(None))]
    );
}

#[tokio::test]
async fn tam_that_stays_down_is_reported_through_process_error() {
    let uri = format!("http://{}/tam", closed_port().await);
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&uri)));

    let result = broker.request_ta(wants_ta(None)).await;

    assert_not_connected(&result);
    let calls = broker.agent().calls();
    assert_eq!(calls.len(), 2);
    assert!(
        matches!(&calls[1], AgentCall::ProcessError { tam_uri, error: TransportError::Connect(_) } if *tam_uri == uri),
        "{calls:?}"
    );
}

/// `retries` bounds the attempts exactly: a server that hangs up is tried 1 + retries times.
#[tokio::test]
async fn retries_are_bounded_and_then_the_agent_is_told() {
    let (uri, accepted) = hang_up_server().await;
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&uri)));

    let result = broker.request_ta(wants_ta(None)).await;

    assert!(
        matches!(result, Err(BrokerError::Transport(_))),
        "{result:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1 + 2);
    let calls = broker.agent().calls();
    assert!(
        matches!(
            calls.as_slice(),
            [AgentCall::RequestTa(_), AgentCall::ProcessError { .. }]
        ),
        "{calls:?}"
    );
}

/// A message POST that may have been delivered is not repeated: the Agent decides.
#[tokio::test]
async fn a_message_post_is_not_repeated_after_a_hang_up() {
    let (uri, accepted) = hang_up_server().await;
    let agent = ScriptedAgent::new().on_request_ta(Ok(AgentAnswer::Contact {
        tam_uri: uri.clone(),
        message: Some(b"query-response".to_vec()),
    }));
    let broker = broker(agent);

    let result = broker.request_ta(wants_ta(None)).await;

    assert_eq!(
        result,
        Err(BrokerError::Transport(match &broker.agent().calls()[1] {
            AgentCall::ProcessError { error, .. } => error.clone(),
            other => panic!("{other:?}"),
        }))
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http_error_status_is_reported_and_not_retried() {
    let tam = tam(vec![Answer::Status(500), Answer::NoContent]).await;
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::Status {
            status: 500
        }))
    );
    assert_eq!(tam.seen().len(), 1);
    assert_eq!(
        broker.agent().calls()[1],
        process_error(&tam.uri(), TransportError::Status { status: 500 })
    );
}

#[tokio::test]
async fn redirect_is_an_error_and_its_target_never_contacted() {
    for code in [301, 302, 303, 307, 308] {
        let tam = tam(vec![Answer::Redirect(code)]).await;
        let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

        let error = TransportError::Redirect { status: code };
        assert_eq!(
            broker.request_ta(wants_ta(None)).await,
            Err(BrokerError::Transport(error.clone()))
        );
        assert_eq!(tam.elsewhere.load(Ordering::SeqCst), 0, "{code} followed");
        assert_eq!(tam.seen().len(), 1);
        assert_eq!(broker.agent().calls()[1], process_error(&tam.uri(), error));
    }
}

#[tokio::test]
async fn after_a_failure_the_agent_may_name_another_tam() {
    let down = format!("http://{}/tam", closed_port().await);
    let tam = tam(vec![Answer::NoContent]).await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&down))
        .on_process_error(contact(&tam.uri()));
    let broker = broker(agent);

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 2 })
    );
    assert_eq!(tam.seen().len(), 1);
}

#[tokio::test]
async fn an_agent_naming_failing_tams_forever_is_cut_off() {
    let down = format!("http://{}/tam", closed_port().await);
    let mut agent = ScriptedAgent::new().on_request_ta(contact(&down));
    for _ in 0..10 {
        agent = agent.on_process_error(contact(&down));
    }
    let mut cfg = config();
    cfg.http.retries = 0;
    cfg.max_exchanges_per_trigger = 3;
    let broker = Broker::new(agent, cfg).unwrap();

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::TooManyExchanges { limit: 3 })
    );
    let errors = broker
        .agent()
        .calls()
        .iter()
        .filter(|c| matches!(c, AgentCall::ProcessError { .. }))
        .count();
    assert_eq!(errors, 3);
}

#[tokio::test]
async fn wrong_or_missing_media_type_is_refused_and_not_relayed() {
    for (content_type, expected) in [
        (Some("application/cbor"), Some("application/cbor")),
        (
            Some("text/html; application/teep+cbor"),
            Some("text/html; application/teep+cbor"),
        ),
        (None, None),
    ] {
        let tam = tam(vec![Answer::Raw(content_type, b"<html>".to_vec())]).await;
        let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

        let error = TransportError::MediaType(expected.map(str::to_owned));
        assert_eq!(
            broker.request_ta(wants_ta(None)).await,
            Err(BrokerError::Transport(error.clone()))
        );
        assert_eq!(
            broker.agent().calls(),
            [
                AgentCall::RequestTa(wants_ta(None)),
                process_error(&tam.uri(), error)
            ]
        );
    }
}

fn small_limit() -> BrokerConfig {
    let mut cfg = config();
    cfg.http.max_response = 1024;
    cfg
}

#[tokio::test]
async fn response_at_the_limit_is_relayed_and_one_byte_more_is_refused() {
    let tam = tam(vec![
        Answer::Teep(vec![7; 1024]),
        Answer::Teep(vec![7; 1025]),
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"again".to_vec())));
    let broker = Broker::new(agent, small_limit()).unwrap();

    let error = TransportError::TooLarge { limit: 1024 };
    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(error.clone()))
    );
    assert_eq!(
        broker.agent().calls()[1..],
        [
            relayed(&tam.uri(), &[7; 1024]),
            process_error(&tam.uri(), error)
        ]
    );
}

/// Without a `Content-Length` the limit is enforced while reading: the Broker stops long
/// before the endless body would have filled its memory.
#[tokio::test]
async fn endless_chunked_response_is_cut_at_the_limit() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/teep+cbor\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (uri, written) = raw_server(head, true).await;
    let broker = Broker::new(
        ScriptedAgent::new().on_request_ta(contact(&uri)),
        small_limit(),
    )
    .unwrap();

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::TooLarge {
            limit: 1024
        }))
    );
    // Socket buffers hold a few MiB at most; an unbounded read would never return.
    assert!(written.load(Ordering::SeqCst) < 64 * 1024 * 1024);
}

/// A declared length over the limit is refused before any of the body is read: the server
/// here never sends it, so a reader would wait until the request timeout.
#[tokio::test]
async fn declared_oversize_length_is_refused_up_front() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/teep+cbor\r\nContent-Length: 1073741824\r\n\r\n";
    let (uri, _) = raw_server(head, false).await;
    let broker = Broker::new(
        ScriptedAgent::new().on_request_ta(contact(&uri)),
        small_limit(),
    )
    .unwrap();

    let started = std::time::Instant::now();
    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::TooLarge {
            limit: 1024
        }))
    );
    assert!(started.elapsed() < config().http.request_timeout);
}

/// The default limit carries an Update with a 1 MiB TC.
#[tokio::test]
async fn default_limit_carries_an_update_with_a_one_mib_tc() {
    let update: Vec<u8> = (0..(1024 * 1024 + 4096)).map(|i: u32| i as u8).collect();
    let tam = tam(vec![Answer::Teep(update.clone())]).await;
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    assert_eq!(broker.agent().calls()[1], relayed(&tam.uri(), &update));
}

#[tokio::test]
async fn slow_tam_times_out() {
    let slow = Answer::Slow(Duration::from_secs(30), Box::new(Answer::NoContent));
    let tam = tam(vec![slow.clone(), slow]).await;
    let mut cfg = config();
    cfg.http.request_timeout = Duration::from_millis(200);
    cfg.http.retries = 1;
    let broker = Broker::new(ScriptedAgent::new().on_request_ta(contact(&tam.uri())), cfg).unwrap();

    let started = std::time::Instant::now();
    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::Timeout))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The empty POST changes nothing at the TAM, so it was tried again once.
    assert_eq!(tam.seen().len(), 2);
    assert_eq!(
        broker.agent().calls()[1],
        process_error(&tam.uri(), TransportError::Timeout)
    );
}

#[tokio::test]
async fn endless_ping_pong_is_cut_off() {
    let listener = loopback_listener().await;
    let tam = tam_on(listener, Vec::new(), Answer::Teep(b"again".to_vec())).await;
    let mut agent = ScriptedAgent::new().on_request_ta(contact(&tam.uri()));
    for _ in 0..10 {
        agent = agent.reply(Ok(Some(b"more".to_vec())));
    }
    let mut cfg = config();
    cfg.max_messages_per_exchange = 4;
    let broker = Broker::new(agent, cfg).unwrap();

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::ExchangeTooLong {
            limit: 4
        }))
    );
    assert_eq!(tam.seen().len(), 4);
}

#[tokio::test]
async fn agent_failure_drops_the_exchange_without_process_error() {
    let tam = tam(vec![Answer::Teep(b"query-request".to_vec())]).await;
    let failure = AgentError::Internal("sealed storage".into());
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Err(failure.clone()));
    let broker = broker(agent);

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Agent(failure))
    );
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::RequestTa(wants_ta(None)),
            relayed(&tam.uri(), b"query-request")
        ]
    );
    assert_eq!(tam.seen().len(), 1);
}

#[tokio::test]
async fn plain_http_is_refused_by_default() {
    let tam = tam(vec![Answer::NoContent]).await;
    let agent = ScriptedAgent::new().on_request_ta(contact(&tam.uri()));
    let broker = Broker::new(agent, BrokerConfig::default()).unwrap();

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::PlainHttpRefused))
    );
    assert!(tam.seen().is_empty());
    assert_eq!(
        broker.agent().calls()[1],
        process_error(&tam.uri(), TransportError::PlainHttpRefused)
    );
}

/// An `https://` URI is never downgraded: against a server that does not speak TLS the
/// handshake fails (a TLS failure, not retried) and no request reaches it.
#[tokio::test]
async fn https_uri_needs_a_tls_server() {
    let tam = tam(vec![Answer::NoContent]).await;
    let uri = format!("https://{}/tam", tam.addr);
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&uri)));

    let result = broker.request_ta(wants_ta(None)).await;

    assert!(
        matches!(result, Err(BrokerError::Transport(TransportError::Tls(_)))),
        "{result:?}"
    );
    assert!(tam.seen().is_empty());
}

#[tokio::test]
async fn policy_check_asks_until_the_agent_answers_nothing() {
    let tam = tam(vec![
        Answer::Teep(b"query-request".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let down = format!("http://{}/tam", closed_port().await);
    let agent = ScriptedAgent::new()
        .on_policy_check(contact(&tam.uri()))
        .on_policy_check(contact(&down))
        .on_policy_check(Ok(AgentAnswer::Nothing))
        .on_policy_check(contact(&tam.uri()))
        .reply(Ok(Some(b"query-response".to_vec())));
    let broker = broker(agent);

    assert_eq!(
        broker.policy_check().await,
        Ok(PolicyReport {
            completed: 1,
            failed: 1
        })
    );
    let checks = broker
        .agent()
        .calls()
        .iter()
        .filter(|c| matches!(c, AgentCall::RequestPolicyCheck { .. }))
        .count();
    assert_eq!(checks, 3, "the fourth answer must not be asked for");
    assert_eq!(tam.seen().len(), 2);
}

#[tokio::test]
async fn policy_check_that_never_ends_is_cut_off() {
    let tam = tam(Vec::new()).await;
    let mut agent = ScriptedAgent::new();
    for _ in 0..20 {
        agent = agent.on_policy_check(contact(&tam.uri()));
    }
    let mut cfg = config();
    cfg.max_policy_rounds = 5;
    let broker = Broker::new(agent, cfg).unwrap();

    assert_eq!(
        broker.policy_check().await,
        Err(BrokerError::PolicyCheckUnbounded { limit: 5 })
    );
    assert_eq!(tam.seen().len(), 5);
}

/// The timer runs a check at start, which stops at the Agent's first "nothing"; the next
/// check waits for the interval; shutdown ends the loop.
#[tokio::test]
async fn policy_timer_checks_until_nothing_then_waits() {
    let tam = tam(vec![Answer::NoContent]).await;
    let agent = ScriptedAgent::new()
        .on_policy_check(contact(&tam.uri()))
        .on_policy_check(Ok(AgentAnswer::Nothing))
        .on_policy_check(contact(&tam.uri()));
    let mut cfg = config();
    cfg.policy_check_interval = Duration::from_secs(3600);
    let broker = Arc::new(Broker::new(agent, cfg).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let timer = tokio::spawn({
        let broker = broker.clone();
        async move {
            broker
                .run_policy_checks(async {
                    let _ = stopped.await;
                })
                .await;
        }
    });

    let calls = || broker.agent().calls().len();
    tokio::time::timeout(Duration::from_secs(5), async {
        while calls() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::RequestPolicyCheck { new_check: true },
            AgentCall::RequestPolicyCheck { new_check: false }
        ]
    );
    assert_eq!(tam.seen().len(), 1);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), timer)
        .await
        .unwrap()
        .unwrap();
}

/// Repeated checks on a short interval: every tick asks again.
#[tokio::test]
async fn policy_timer_repeats_on_its_interval() {
    let mut cfg = config();
    cfg.policy_check_interval = Duration::from_millis(20);
    let broker = Arc::new(Broker::new(ScriptedAgent::new(), cfg).unwrap());
    let shutdown = tokio::time::sleep(Duration::from_millis(300));

    broker.run_policy_checks(shutdown).await;

    let checks = broker.agent().calls().len();
    assert!(
        (3..=20).contains(&checks),
        "{checks} checks in 300 ms at 20 ms"
    );
}

/// Older TAMs label their answers `application/teep+cose`: refused (and not relayed)
/// unless the Broker is configured for them, then relayed like `teep+cbor`, with both
/// types in `Accept`.
#[tokio::test]
async fn teep_cose_answers_only_in_pre26_mode() {
    let old = Some("application/teep+cose");
    let tam_ = tam(vec![Answer::Raw(old, b"query-request".to_vec())]).await;
    let refusing = broker(ScriptedAgent::new().on_request_ta(contact(&tam_.uri())));
    let error = TransportError::MediaType(old.map(str::to_owned));
    assert_eq!(
        refusing.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(error.clone()))
    );
    assert_eq!(
        refusing.agent().calls(),
        [
            AgentCall::RequestTa(wants_ta(None)),
            process_error(&tam_.uri(), error)
        ]
    );

    let tam_ = tam(vec![
        Answer::Raw(
            Some("Application/TEEP+COSE; x=1"),
            b"query-request".to_vec(),
        ),
        Answer::NoContent,
    ])
    .await;
    let mut cfg = config();
    cfg.http.accept_teep_cose = true;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam_.uri()))
        .reply(Ok(Some(b"query-response".to_vec())));
    let accepting = Broker::new(agent, cfg).unwrap();
    assert_eq!(
        accepting.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    assert_eq!(
        accepting.agent().calls(),
        [
            AgentCall::RequestTa(wants_ta(None)),
            relayed(&tam_.uri(), b"query-request"),
        ]
    );
    let seen = tam_.seen();
    assert_eq!(
        seen[0].accept.as_deref(),
        Some("application/teep+cbor, application/teep+cose;q=0.9")
    );
    // What the Broker sends is still labelled teep+cbor.
    assert_eq!(seen[1].content_type.as_deref(), Some(TEEP));
}

/// `HttpConfig::capture`: every POST and answer in order, bodies byte for byte in numbered
/// files; an answer the Broker refuses (wrong media type, the TAM's `<html>`) is indexed with
/// its error and never written; a second Broker on the same directory numbers after it.
#[tokio::test]
async fn a_capture_holds_every_body_in_order_and_never_a_refused_one() {
    let dir = tempfile::tempdir().unwrap();
    let capture = teep_broker::Capture::open(&dir.path().join("cap")).unwrap();
    let mut cfg = config();
    cfg.http.capture = Some(capture);
    let tam = tam(vec![
        Answer::Teep(b"query-request".to_vec()),
        Answer::NoContent,
        Answer::Raw(Some("text/html"), b"<html>".to_vec()),
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"query-response".to_vec())));
    let broker = Broker::new(agent, cfg.clone()).unwrap();
    broker.request_ta(wants_ta(None)).await.unwrap();
    let again = Broker::new(
        ScriptedAgent::new().on_request_ta(contact(&tam.uri())),
        BrokerConfig {
            http: teep_broker::HttpConfig {
                capture: Some(teep_broker::Capture::open(&dir.path().join("cap")).unwrap()),
                ..cfg.http.clone()
            },
            ..cfg
        },
    )
    .unwrap();
    assert!(again.request_ta(wants_ta(None)).await.is_err());

    let cap = dir.path().join("cap");
    let index = std::fs::read_to_string(cap.join(teep_broker::INDEX_FILE)).unwrap();
    let entries: Vec<teep_broker::CaptureEntry> = index
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.n,
                e.direction.as_str(),
                e.status,
                e.len,
                e.file.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "to-tam", None, 0, None),
            (2, "from-tam", Some(200), 13, Some("000002-from-tam.cbor")),
            (3, "to-tam", None, 14, Some("000003-to-tam.cbor")),
            (4, "from-tam", Some(204), 0, None),
            (5, "to-tam", None, 0, None),
            (6, "from-tam", None, 0, None),
        ]
    );
    assert!(entries.iter().all(|e| e.tam == tam.uri()));
    assert_eq!(entries[1].media_type.as_deref(), Some(TEEP));
    assert_eq!(
        entries[5].error.as_deref(),
        Some("wrong media type Some(\"text/html\")")
    );
    assert_eq!(
        std::fs::read(cap.join("000002-from-tam.cbor")).unwrap(),
        b"query-request"
    );
    assert_eq!(
        std::fs::read(cap.join("000003-to-tam.cbor")).unwrap(),
        b"query-response"
    );
    let mut files: Vec<String> = std::fs::read_dir(&cap)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["000002-from-tam.cbor", "000003-to-tam.cbor", "index.jsonl"],
        "the refused <html> is not written"
    );
}
