//! The API work of gathered activities, for the pipeline's gatherer (`pipeline::gather`):
//! e-mail addresses resolved to contact ids (through a fresh mirror first, or the API), and
//! one bulk activity applying a set of targets (tags or lists) to the contacts of several
//! commands at once, or deleting the contacts, lists, tags or custom fields of several delete
//! commands at once. Polling the activity is
//! [`Handler::poll_import`]'s (it reads any activity).

use serde_json::Value;

use crate::api::ApiError;
use crate::api::client::Fence;
use crate::api::model::Activity;
use crate::command::tagging::{ActivityKind, TaggingContacts};

use super::contact::{self, DeleteTarget, Erasure};
use super::tagging::{self, ContactIds, Resolve};
use super::{HandleError, Handler};
use crate::command::contact::ContactRef;

/// A gathered command's items once resolved.
pub enum GatheredItems {
    /// The ids its share of the activity names, and how many came from the mirror.
    Ids(ContactIds),
    /// A `contact.erase` of a live contact: deleted by the activity, then erased
    /// ([`Handler::finish_gathered_erasure`]).
    Erasure(Erasure),
    /// Nothing left to do (a `contact.delete` of an address whose contact is deleted
    /// already, or a `contact.erase` of a contact deleted already, erased now): its `data`.
    Answered(Value),
}

impl Handler {
    /// The ids of `contacts`: as given, or resolved by e-mail as `resolve` says — with
    /// [`Resolve::MirrorFirst`], from a fresh mirror for the addresses it holds and through
    /// the API for the others — and how many came from the mirror. An unknown address is
    /// `not_found` naming `data.emails[i]`, as one by one. When an activity over ids of
    /// which some came from the mirror (`from_mirror > 0`) is refused with 404, resolve again
    /// with [`Resolve::ApiOnly`]: the mirror may be behind.
    pub async fn resolve_contact_ids(
        &self,
        account: &str,
        command_id: &str,
        contacts: &TaggingContacts,
        resolve: Resolve,
    ) -> Result<ContactIds, HandleError> {
        let api = self.api.account(account).for_command(command_id);
        let mirror = self.mirror.as_ref();
        tagging::contact_ids(&api, mirror, account, self.now(), contacts, resolve).await
    }

    /// See [`tagging::looked_up_again`]: after a gathered command's activity was refused with
    /// 404, its addresses looked up through the API when some of its ids came from the mirror;
    /// `Some` when that changes them.
    pub async fn looked_up_again(
        &self,
        account: &str,
        command_id: &str,
        contacts: &TaggingContacts,
        resolved: &ContactIds,
        route: &str,
    ) -> Result<Option<ContactIds>, HandleError> {
        let api = self.api.account(account).for_command(command_id);
        tagging::looked_up_again(&api, account, self.now(), contacts, resolved, route).await
    }

    /// The items of a gathered command of `kind`: the contacts' ids (see
    /// [`Handler::resolve_contact_ids`]), or for a `contact.delete` by address the contact
    /// looked up through the API among live and deleted ones (deleted already: answered as
    /// one by one; the mirror is not asked, as it does not know a contact deleted since).
    pub async fn gathered_items(
        &self,
        account: &str,
        command_id: &str,
        kind: ActivityKind,
        contacts: &TaggingContacts,
        resolve: Resolve,
    ) -> Result<GatheredItems, HandleError> {
        if kind == ActivityKind::ContactErase {
            return self.gathered_erasure(account, command_id, contacts).await;
        }
        let (ActivityKind::ContactDelete, TaggingContacts::Emails(emails)) = (kind, contacts)
        else {
            return self
                .resolve_contact_ids(account, command_id, contacts, resolve)
                .await
                .map(GatheredItems::Ids);
        };
        let api = self.api.account(account).for_command(command_id);
        let mut ids = Vec::with_capacity(emails.len());
        for email in emails {
            let target = ContactRef::Email(email.clone());
            match contact::delete_target(&api, &target).await? {
                DeleteTarget::Live(id) => ids.push(id),
                DeleteTarget::Answered(data) => return Ok(GatheredItems::Answered(data)),
            }
        }
        Ok(GatheredItems::Ids(ContactIds {
            ids,
            from_mirror: 0,
        }))
    }

    /// The contact of a gathered `contact.erase` (it names one, by id or by address): one
    /// deleted in Constant Contact already is erased at once.
    async fn gathered_erasure(
        &self,
        account: &str,
        command_id: &str,
        contacts: &TaggingContacts,
    ) -> Result<GatheredItems, HandleError> {
        let target = match contacts {
            TaggingContacts::Ids(ids) => ids.first().cloned().map(ContactRef::Id),
            TaggingContacts::Emails(emails) => emails.first().cloned().map(ContactRef::Email),
        };
        let Some(target) = target else {
            return Err(HandleError::failed(
                crate::command::outcome::ErrorCode::Unsupported,
                "the erasure names no contact",
            ));
        };
        let api = self.api.account(account).for_command(command_id);
        let erasure = contact::erasure_target(self, &api, account, &target).await?;
        if erasure.deleted {
            let data = contact::finish_erasure(self, account, command_id, &erasure, true).await?;
            return Ok(GatheredItems::Answered(data));
        }
        Ok(GatheredItems::Erasure(erasure))
    }

    /// Erases the contact of a gathered `contact.erase` once the shared activity deleted it
    /// (mirror rows, tombstone, ledger scrub); its `data`.
    pub async fn finish_gathered_erasure(
        &self,
        account: &str,
        command_id: &str,
        erasure: &Erasure,
    ) -> Result<Value, HandleError> {
        contact::finish_erasure(self, account, command_id, erasure, false).await
    }

    /// Forgets the account's custom fields (after a gathered delete of some of them).
    pub fn forget_custom_fields(&self, account: &str) {
        self.fields.invalidate(account);
    }

    /// Starts one activity of `kind` applying `targets` to `contact_ids` (at most 500),
    /// checking `fence` (every gathered command's claim) right before the request.
    pub async fn start_activity(
        &self,
        account: &str,
        kind: ActivityKind,
        contact_ids: &[String],
        targets: &[String],
        fence: Fence,
    ) -> Result<Activity, ApiError> {
        let api = self.api.account(account).with_fence(Some(fence));
        tagging::start_activity(&api, kind, contact_ids.to_vec(), targets.to_vec()).await
    }
}
