//! Segments through the admin API: Constant Contact makes them in its UI, which the sandbox
//! has not, so tests and tools add and delete them here; the API only reads them.

use super::SandboxAdmin;
use super::ops::account_index;
use crate::errors::SandboxError;

impl SandboxAdmin {
    /// Adds a segment to `account` (as made in the UI); returns its integer `segment_id`.
    /// `criteria` is kept verbatim (the API's single-string escaped JSON).
    pub fn add_segment(
        &self,
        account: &str,
        name: &str,
        criteria: &str,
    ) -> Result<u32, SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        world
            .with_account(index, now, None, |acc, cx| {
                let id = acc.segments.add(name, criteria, cx.now)?;
                cx.effect(&acc.id, "segment.created", id);
                Ok(id)
            })
            .ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))?
            .map_err(SandboxError::InvalidAdminRequest)
    }

    /// Deletes a live segment of `account`: `GET /segments` leaves it out from now on,
    /// `GET /segments/{segment_id}` still answers with it.
    pub fn delete_segment(&self, account: &str, segment_id: u32) -> Result<(), SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        world
            .with_account(index, now, None, |acc, cx| {
                if acc.segments.delete(segment_id, cx.now) {
                    cx.effect(&acc.id, "segment.deleted", segment_id);
                    Ok(())
                } else {
                    Err(format!("no live segment {segment_id}"))
                }
            })
            .ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))?
            .map_err(SandboxError::InvalidAdminRequest)
    }
}
