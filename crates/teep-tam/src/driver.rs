//! A generic driver: runs the engine's steps against any [`Store`] and [`Appraiser`], then
//! commits. It does no I/O of its own; the HTTP shell calls [`drive`] per request body.

use teep_attest::Appraiser;

use crate::engine::{Context, Decision, Resume, Step, Tam};
use crate::error::{Dropped, Handled};
use crate::store::{Changes, DeviceId, Store, StoreError};

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
    let device = meta.device.map(|d| d.to_string()).unwrap_or_default();
    match &result {
        Ok(h) => {
            tracing::info!(kind = meta.kind, %device, token = %meta.token_prefix, outcome = ?h.event, "teep message")
        }
        Err(e) => {
            tracing::info!(kind = meta.kind, %device, token = %meta.token_prefix, dropped = %e, "teep message")
        }
    }
    result
}

/// [`decide`] then [`commit`].
pub async fn drive<S: Store, A: Appraiser + Sync>(
    tam: &Tam,
    store: &S,
    appraiser: &A,
    body: &[u8],
    device_hint: Option<DeviceId>,
    cx: &mut Context<'_>,
) -> Result<Handled, Dropped> {
    let decision = decide(tam, store, appraiser, body, device_hint, cx).await;
    commit(store, decision).await
}
