//! The API work of gathered activities, for the pipeline's gatherer (`pipeline::gather`):
//! e-mail addresses resolved to contact ids (through a fresh mirror first, or the API), and one bulk activity applying a set of
//! targets (tags or lists) to the contacts of several commands at once. Polling the activity is
//! [`Handler::poll_import`]'s (it reads any activity).

use crate::api::ApiError;
use crate::api::client::Fence;
use crate::api::model::Activity;
use crate::command::tagging::{ActivityKind, TaggingContacts};

use super::tagging::{self, ContactIds, Resolve};
use super::{HandleError, Handler};

impl Handler {
    /// The ids of `contacts`: as given, or looked up by e-mail through the API (one request
    /// per address; an unknown address is `not_found` naming `data.emails[i]`, as one by
    /// one). [`Handler::resolve_contact_ids`] with [`Resolve::ApiOnly`], without saying
    /// where the ids came from.
    pub async fn gathered_contact_ids(
        &self,
        account: &str,
        command_id: &str,
        contacts: &TaggingContacts,
    ) -> Result<Vec<String>, HandleError> {
        self.resolve_contact_ids(account, command_id, contacts, Resolve::ApiOnly)
            .await
            .map(|resolved| resolved.ids)
    }

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
