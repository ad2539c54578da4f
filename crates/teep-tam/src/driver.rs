//! A generic driver: runs the engine's steps against any [`Store`] and [`Appraiser`], then
//! commits. It does no I/O of its own; the HTTP shell calls [`drive`] per request body.

use std::sync::{Mutex, PoisonError};

use teep_attest::{Appraiser, Challenge};

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
    let mut step = tam.start(body, device_hint);
    loop {
        step = match step {
            Step::Done(decision) => return decision,
            Step::Load(request, pending) => match store.load(&request).await {
                Ok(loaded) => tam.resume(pending, Resume::Loaded(loaded), cx),
                Err(e) => return pending.fail(Dropped::Store(e.to_string()), cx.now),
            },
            Step::Appraise(request, pending) => match appraiser.fulfil(request, cx.now).await {
                Ok(answer) => tam.resume(pending, Resume::Appraised(answer), cx),
                Err(e) => return pending.fail(Dropped::Verifier(e.to_string()), cx.now),
            },
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
/// Verifier is not asked again ([`Remembering`]). With the device the message
/// turned out to be about, for the caller's own record of the exchange.
pub async fn drive_with_device<S: Store, A: Appraiser + Sync>(
    tam: &Tam,
    store: &S,
    appraiser: &A,
    body: &[u8],
    device_hint: Option<DeviceId>,
    cx: &mut Context<'_>,
) -> (Option<DeviceId>, Result<Handled, Dropped>) {
    let appraiser = Remembering::new(appraiser);
    let mut tries = 0;
    loop {
        let decision = decide(tam, store, &appraiser, body, device_hint, cx).await;
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

/// The Verifier's answers to one message, kept across [`drive_with_device`]'s tries: asked
/// again, it answers as before (the Verifier itself would refuse the same Evidence twice,
/// its challenge spent, and a challenge of a lost try was never sent).
struct Remembering<'a, A> {
    appraiser: &'a A,
    challenge: Mutex<Option<Challenge>>,
    /// Evidence appraised, with its EAR.
    ears: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl<'a, A> Remembering<'a, A> {
    const fn new(appraiser: &'a A) -> Self {
        Self {
            appraiser,
            challenge: Mutex::new(None),
            ears: Mutex::new(Vec::new()),
        }
    }
}

impl<A: Appraiser + Sync> Appraiser for Remembering<'_, A> {
    type Error = A::Error;

    async fn challenge(&self, now: u64) -> Result<Challenge, Self::Error> {
        let kept = self
            .challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(challenge) = kept {
            return Ok(challenge);
        }
        let challenge = self.appraiser.challenge(now).await?;
        *self
            .challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(challenge.clone());
        Ok(challenge)
    }

    async fn appraise(&self, evidence: &[u8], now: u64) -> Result<Vec<u8>, Self::Error> {
        let kept = self
            .ears
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(seen, _)| seen == evidence)
            .map(|(_, ear)| ear.clone());
        if let Some(ear) = kept {
            return Ok(ear);
        }
        let ear = self.appraiser.appraise(evidence, now).await?;
        self.ears
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((evidence.to_vec(), ear.clone()));
        Ok(ear)
    }
}
