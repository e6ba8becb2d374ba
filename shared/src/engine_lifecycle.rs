//! After the send: looking a verification up, canceling it, and its delivery receipts.

use std::time::Instant;

use tracing::Instrument as _;

use super::{child_span, log_store_error, Engine};
use crate::domain::Space;
use crate::meter;
use crate::store::{status_of, StoreError};
use crate::verification::{
    Cancel, DeliveryStatus, Receipt, ReceiptOutcome, Status, Verification, VerificationId,
};

/// A verification as `GET /verifications/{id}` shows it.
#[derive(Debug, Clone)]
pub struct VerificationView {
    pub verification: Verification,
    pub status: Status,
    /// Guesses the code still takes (0 unless pending).
    pub attempts_remaining: u32,
    /// Seconds until the code expires (0 unless pending).
    pub expires_in: u64,
}

impl Engine {
    /// A backend verification by its id; `None` for an unknown id, one sent through the public
    /// routes, or one whose code was never handed out.
    pub async fn verification(&self, id: &str) -> Result<Option<VerificationView>, StoreError> {
        let Some(id) = VerificationId::parse(id) else {
            return Ok(None);
        };
        let found = self
            .timed("lookup", self.parts.store.verification(&id))
            .await?;
        let Some((verification, record)) = found.filter(|(v, _)| v.space == Space::Backend) else {
            return Ok(None);
        };
        let now = self.parts.clock.now();
        let Some(status) = status_of(&verification, record.as_ref(), now) else {
            return Ok(None);
        };
        let pending = status == Status::Pending;
        let attempts = record.as_ref().map_or(0, |r| r.attempts);
        Ok(Some(VerificationView {
            attempts_remaining: if pending {
                verification.max_attempts.saturating_sub(attempts)
            } else {
                0
            },
            expires_in: if pending {
                verification.expires_at.saturating_sub(now)
            } else {
                0
            },
            status,
            verification,
        }))
    }

    /// Cancels a backend verification whose code is pending (see [`crate::store::OtpStore::cancel`]).
    pub async fn cancel(&self, id: &str) -> Result<Cancel, StoreError> {
        let Some(id) = VerificationId::parse(id) else {
            return Ok(Cancel::Unknown);
        };
        let found = self
            .timed("lookup", self.parts.store.verification(&id))
            .await?;
        let Some((verification, _)) = found.filter(|(v, _)| v.space == Space::Backend) else {
            return Ok(Cancel::Unknown);
        };
        let now = self.parts.clock.now();
        let canceled = self
            .timed("cancel", self.parts.store.cancel(&verification, now))
            .await?;
        let user = crate::mask::user_id(&verification.user_id);
        match canceled {
            Cancel::Canceled => {
                tracing::info!(%user, purpose = verification.purpose, %id, "verification canceled")
            }
            other => tracing::info!(%user, %id, outcome = ?other, "verification not canceled"),
        }
        Ok(canceled)
    }

    /// Records a provider's delivery receipt for the verification `id`.
    pub async fn delivery_receipt(
        &self,
        id: &VerificationId,
        receipt: &Receipt,
        provider: &'static str,
    ) -> Result<ReceiptOutcome, StoreError> {
        let outcome = self
            .timed("receipt", self.parts.store.record_delivery(id, receipt))
            .await?;
        if let ReceiptOutcome::Applied {
            calling_code,
            block,
            sent_at,
        } = &outcome
        {
            meter::delivery_receipt(provider, receipt.status, *calling_code);
            // An undelivered code counts against its range (in AWS the stream counts it).
            let undelivered = matches!(
                receipt.status,
                DeliveryStatus::Undelivered | DeliveryStatus::Failed
            );
            if let (true, Some(block)) = (undelivered, block) {
                let tick = crate::fraud::Tick {
                    kind: crate::fraud::TickKind::Undelivered,
                    block: Some(block.clone()),
                    country: *calling_code,
                    sent_at: *sent_at,
                    event: None,
                };
                self.parts.fraud.count(Some(tick), receipt.at).await;
            }
        }
        tracing::info!(
            %id, provider, status = receipt.status.as_str(),
            error_code = receipt.error_code.as_deref().unwrap_or("-"),
            outcome = ?outcome, "delivery receipt"
        );
        Ok(outcome)
    }

    /// A store call, timed and counted like the send's and the verify's.
    pub(super) async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call
            .instrument(child_span(|| tracing::info_span!("store", operation)))
            .await;
        meter::store_call(operation, result.is_ok(), started.elapsed());
        result.inspect_err(log_store_error)
    }
}
