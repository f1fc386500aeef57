//! The API work of gathered activities, for the pipeline's gatherer (`pipeline::gather`):
//! e-mail addresses looked up to contact ids, and one bulk activity applying a set of
//! targets (tags or lists) to the contacts of several commands at once. Polling the activity is
//! [`Handler::poll_import`]'s (it reads any activity).

use crate::api::ApiError;
use crate::api::client::Fence;
use crate::api::model::Activity;
use crate::command::tagging::{ActivityKind, TaggingContacts};

use super::{HandleError, Handler, tagging};

impl Handler {
    /// The ids of `contacts`: as given, or looked up by e-mail (one request per address;
    /// an unknown address is `not_found` naming `data.emails[i]`, as one by one).
    pub async fn gathered_contact_ids(
        &self,
        account: &str,
        command_id: &str,
        contacts: &TaggingContacts,
    ) -> Result<Vec<String>, HandleError> {
        let api = self.api.account(account).for_command(command_id);
        tagging::contact_ids(&api, contacts).await
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
