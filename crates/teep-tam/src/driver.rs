//! A generic driver: runs the engine's steps against any [`Store`] and [`Appraiser`], then
//! commits. It does no I/O of its own; the HTTP shell calls [`drive`] per request body.

use teep_attest::{AppraisalRequest, AppraisalResponse, Appraiser};

use crate::engine::{Context, Decision, MessageMeta, Resume, Step, Tam};
use crate::error::{Dropped, Handled};
use crate::store::{Changes, DeviceId, Store, StoreError};

/// How many times [`drive`] decides again after its commit lost a compare-and-set.
pub const CONFLICT_RETRIES: usize = 2;

/// Loads and appraises until the engine decides; commits nothing.
pub async fn decide<S: Store, A: Appraiser + Sync>(
    tam: &Tam,
    store: &S,
    appraiser: &A,
    body: &[u8],
    device_hint: Option<DeviceId>,
    cx: &mut Context<'_>,
) -> Decision {
    let mut answers = Vec::new();
    decide_reusing(tam, store, appraiser, body, device_hint, cx, &mut answers).await
}

/// [`decide`], answering an appraisal the engine asked for before from `answers` (the
/// Verifier's answers to this same message in an earlier try, which it would not give
/// again: the Evidence's challenge is spent), and adding the new ones.
async fn decide_reusing<S: Store, A: Appraiser + Sync>(
    tam: &Tam,
    store: &S,
    appraiser: &A,
    body: &[u8],
    device_hint: Option<DeviceId>,
    cx: &mut Context<'_>,
    answers: &mut Vec<(AppraisalRequest, AppraisalResponse)>,
) -> Decision {
    let mut step = tam.start(body, device_hint);
    loop {
        step = match step {
            Step::Done(decision) => return decision,
            Step::Load(request, pending) => match store.load(&request).await {
                Ok(loaded) => tam.resume(pending, Resume::Loaded(loaded), cx),
                Err(e) => return pending.fail(Dropped::Store(e.to_string()), cx.now),
            },
            Step::Appraise(request, pending) => {
                if let Some((_, answer)) = answers.iter().find(|(asked, _)| asked == &request) {
                    tam.resume(pending, Resume::Appraised(answer.clone()), cx)
                } else {
                    match appraiser.fulfil(request.clone(), cx.now).await {
                        Ok(answer) => {
                            answers.push((request, answer.clone()));
                            tam.resume(pending, Resume::Appraised(answer), cx)
                        }
                        Err(e) => return pending.fail(Dropped::Verifier(e.to_string()), cx.now),
                    }
                }
            }
        };
    }
}

/// Commits a decision's changes (compare-and-set on the consumed token) and logs the one
/// line for the message. A lost compare-and-set becomes [`Dropped::Conflict`]: the reply
/// must not be sent.
pub async fn commit<S: Store>(store: &S, decision: Decision) -> Result<Handled, Dropped> {
    let (meta, result) = apply(store, decision).await;
    log(&meta, &result);
    result
}

/// Commits a decision's changes, or a dropped message's failed appraisal; no log line.
async fn apply<S: Store>(store: &S, decision: Decision) -> (MessageMeta, Result<Handled, Dropped>) {
    let Decision {
        meta,
        result,
        failed_attestation,
    } = decision;
    let result = match result {
        Ok(handled) => match store.commit(&handled.changes).await {
            Ok(()) => Ok(handled),
            Err(StoreError::Conflict) => Err(Dropped::Conflict),
            Err(e) => Err(Dropped::Store(e.to_string())),
        },
        Err(e) => {
            // Only the failed appraisal's outcome: the message changes nothing else.
            if let Some(outcome) = failed_attestation {
                let only = Changes {
                    outcome: Some(outcome),
                    ..Changes::default()
                };
                if let Err(store_error) = store.commit(&only).await {
                    tracing::warn!(%store_error, "failed attestation not recorded");
                }
            }
            Err(e)
        }
    };
    (meta, result)
}

/// The one log line for a message.
fn log(meta: &MessageMeta, result: &Result<Handled, Dropped>) {
    let device = meta.device.map(|d| d.to_string()).unwrap_or_default();
    match result {
        Ok(h) => {
            tracing::info!(kind = meta.kind, %device, token = %meta.token_prefix, outcome = ?h.event, "teep message")
        }
        Err(e) => {
            tracing::info!(kind = meta.kind, %device, token = %meta.token_prefix, dropped = %e, "teep message")
        }
    }
}

/// [`decide`] then [`commit`], deciding again (at most [`CONFLICT_RETRIES`] times) when
/// the commit loses its compare-and-set: nothing of the lost try was written, and the next
/// one loads afresh, so a token consumed meanwhile is found consumed and the message
/// dropped, and a device record changed meanwhile (another session of the device, the
/// operator) is decided on as it now is, instead of the device getting no answer. The
/// Verifier is not asked again (see [`decide_reusing`]). With the device the message
/// turned out to be about, for the caller's own record of the exchange.
pub async fn drive_with_device<S: Store, A: Appraiser + Sync>(
    tam: &Tam,
    store: &S,
    appraiser: &A,
    body: &[u8],
    device_hint: Option<DeviceId>,
    cx: &mut Context<'_>,
) -> (Option<DeviceId>, Result<Handled, Dropped>) {
    let mut answers = Vec::new();
    let mut tries = 0;
    loop {
        let decision =
            decide_reusing(tam, store, appraiser, body, device_hint, cx, &mut answers).await;
        let (meta, result) = apply(store, decision).await;
        if matches!(result, Err(Dropped::Conflict)) && tries < CONFLICT_RETRIES {
            tries += 1;
            tracing::debug!(kind = meta.kind, token = %meta.token_prefix, tries, "commit lost its compare-and-set: deciding again");
            continue;
        }
        log(&meta, &result);
        return (meta.device, result);
    }
}

/// [`drive_with_device`] without the device.
pub async fn drive<S: Store, A: Appraiser + Sync>(
    tam: &Tam,
    store: &S,
    appraiser: &A,
    body: &[u8],
    device_hint: Option<DeviceId>,
    cx: &mut Context<'_>,
) -> Result<Handled, Dropped> {
    drive_with_device(tam, store, appraiser, body, device_hint, cx)
        .await
        .1
}
