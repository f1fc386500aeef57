//! Every API operation against the sandbox, one module per family: the operation succeeds and
//! its main failure arrives as the right `ApiError`.

mod account;
mod activities;
mod campaigns;
mod contacts;
mod custom_fields;
mod lists;
mod repeats;
pub(crate) mod reports;
mod segments;
mod tags;

use ctct_sync::api::AccountApi;
use ctct_sync::api::model::{ContactList, ListInput};

/// A new list named `name`.
pub async fn new_list(api: &AccountApi, name: &str) -> ContactList {
    api.create_list(&ListInput::new(name))
        .await
        .expect("the list is created")
}

/// A UUID that names nothing in the sandbox.
pub const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";
