//! Commands: what backend services ask ctct-sync to do, decoded and checked before anything
//! touches the API. Parse, don't validate: a [`Command`] only exists when every field passed.
//!
//! Each module below uses only modules above it:
//!
//! ```text
//! timestamp  how times are written on results and events (milliseconds, `Z`)
//! field      FieldError (one problem with one field) and truncate (text echoed in results)
//! outcome    the result message: outcome, error codes, ResultError
//! rejection  Rejection: why a message or a command was not accepted
//! json       strict parsing of the body: repeated keys refused
//! envelope   {"id", "type", "account", "data"} and the message's AMQP properties
//! email      an e-mail address checked once (its Debug hides it)
//! patch      absent / null / value of a field in a partial update
//! check      field checks that collect every problem with its path
//! contact    contact.create / update / upsert / sign_up / get / delete / opt_out / erase
//! campaign   campaign.create / update / get / list / schedule / unschedule / send_test,
//!            report.campaign.get
//! catalog    custom_field.*, list.*, account.*, mirror.run
//! segment    segment.list / get (read only; integer ids)
//! tag        tag.create / update / delete
//! tagging    contact.tag / untag (tags applied to or removed from contacts)
//! membership list.add_contacts / remove_contacts (contacts added to or removed from lists)
//! ```

pub mod campaign;
pub mod catalog;
pub mod check;
pub mod contact;
pub mod email;
pub mod envelope;
pub mod field;
pub mod json;
pub mod membership;
pub mod outcome;
pub mod patch;
pub mod rejection;
pub mod segment;
pub mod tag;
pub mod tagging;
pub mod timestamp;

use chrono::{DateTime, Utc};

use outcome::ErrorCode;

pub use envelope::{DecodeError, Envelope, MessageMeta, Partial};
pub use field::FieldError;
pub use rejection::Rejection;

use campaign::{CampaignFields, TestSend, When};
use catalog::{CustomFieldSpec, ListSpec, MirrorSpec};
use contact::{ContactChanges, ContactRef, OptOut, SignUp, UpdateChanges};

/// Every command type, as written in the envelope's `type`.
pub const COMMAND_TYPES: [&str; 37] = [
    "contact.create",
    "contact.update",
    "contact.upsert",
    "contact.sign_up",
    "contact.get",
    "contact.delete",
    "contact.opt_out",
    "contact.erase",
    "contact.tag",
    "contact.untag",
    "custom_field.create",
    "custom_field.update",
    "custom_field.delete",
    "custom_field.list",
    "list.create",
    "list.list",
    "list.update",
    "list.delete",
    "list.add_contacts",
    "list.remove_contacts",
    "segment.list",
    "segment.get",
    "tag.create",
    "tag.update",
    "tag.delete",
    "campaign.create",
    "campaign.update",
    "campaign.get",
    "campaign.list",
    "campaign.schedule",
    "campaign.unschedule",
    "campaign.send_test",
    "report.campaign.get",
    "account.emails.list",
    "account.email.add",
    "account.privileges.get",
    "mirror.run",
];

/// A checked command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ContactCreate(ContactChanges),
    ContactUpdate(ContactRef, UpdateChanges),
    ContactUpsert(ContactChanges),
    ContactSignUp(SignUp),
    ContactGet(ContactRef),
    ContactDelete(ContactRef),
    /// `contact.opt_out`: the contact's address becomes unsubscribed.
    ContactOptOut(OptOut),
    /// `contact.erase`: a GDPR erasure — deleted in Constant Contact, removed from the
    /// mirror (tombstoned) and scrubbed from the ledger's stored results.
    ContactErase(ContactRef),
    /// `contact.tag`: tags applied to contacts (an activity in the API).
    ContactTag(tagging::Tagging),
    /// `contact.untag`: tags removed from contacts (an activity in the API).
    ContactUntag(tagging::Tagging),
    CustomFieldCreate(CustomFieldSpec),
    CustomFieldUpdate(CustomFieldSpec),
    CustomFieldDelete(String),
    CustomFieldList,
    ListCreate(ListSpec),
    ListList,
    /// `list.update`: changes a list's name, description or favorite flag.
    ListUpdate(catalog::ListChanges),
    /// `list.delete`: deletes a list by id (an activity in the API).
    ListDelete(String),
    /// `list.add_contacts`: contacts added to lists (an activity in the API).
    ListAddContacts(membership::Membership),
    /// `list.remove_contacts`: contacts removed from lists (an activity in the API).
    ListRemoveContacts(membership::Membership),
    /// `segment.list`: every live segment.
    SegmentList,
    /// `segment.get`: one segment by its integer id.
    SegmentGet(u32),
    /// `tag.create`: a new tag (a taken name answers with the existing tag).
    TagCreate(tag::TagSpec),
    /// `tag.update`: renames a tag.
    TagUpdate(tag::TagRename),
    /// `tag.delete`: deletes a tag by id (an activity in the API).
    TagDelete(String),
    CampaignCreate(CampaignFields),
    CampaignUpdate(String, CampaignFields),
    CampaignGet(String),
    CampaignList(u32),
    CampaignSchedule(String, When),
    CampaignUnschedule(String),
    CampaignSendTest(TestSend),
    /// `report.campaign.get`: the aggregate statistics of one campaign.
    ReportCampaignGet(String),
    AccountEmailsList(Option<String>),
    AccountEmailAdd(String),
    AccountPrivilegesGet,
    MirrorRun(MirrorSpec),
}

impl Command {
    /// Checks an envelope's data against its type. `now` decides whether a schedule time
    /// lies in the past.
    pub fn parse(envelope: &Envelope, now: DateTime<Utc>) -> Result<Command, Rejection> {
        let data = envelope.data.clone();
        Ok(match envelope.command_type.as_str() {
            "contact.create" => Command::ContactCreate(contact::parse_create(data)?),
            "contact.upsert" => Command::ContactUpsert(contact::parse_upsert(data)?),
            "contact.update" => {
                let (target, changes) = contact::parse_update(data)?;
                Command::ContactUpdate(target, changes)
            }
            "contact.sign_up" => Command::ContactSignUp(contact::parse_sign_up(data)?),
            "contact.get" => Command::ContactGet(contact::parse_ref(data)?),
            "contact.delete" => Command::ContactDelete(contact::parse_ref(data)?),
            "contact.opt_out" => Command::ContactOptOut(contact::parse_opt_out(data)?),
            "contact.erase" => Command::ContactErase(contact::parse_ref(data)?),
            "contact.tag" => Command::ContactTag(tagging::parse(data)?),
            "contact.untag" => Command::ContactUntag(tagging::parse(data)?),
            "custom_field.create" => {
                Command::CustomFieldCreate(catalog::parse_custom_field(false, data)?)
            }
            "custom_field.update" => {
                Command::CustomFieldUpdate(catalog::parse_custom_field(true, data)?)
            }
            "custom_field.delete" => {
                Command::CustomFieldDelete(catalog::parse_custom_field_id(data)?)
            }
            "custom_field.list" => {
                catalog::parse_empty(data)?;
                Command::CustomFieldList
            }
            "list.create" => Command::ListCreate(catalog::parse_list(data)?),
            "list.list" => {
                catalog::parse_empty(data)?;
                Command::ListList
            }
            "list.update" => Command::ListUpdate(catalog::parse_list_update(data)?),
            "list.delete" => Command::ListDelete(catalog::parse_list_delete(data)?),
            "list.add_contacts" => Command::ListAddContacts(membership::parse(data)?),
            "list.remove_contacts" => Command::ListRemoveContacts(membership::parse(data)?),
            "segment.list" => {
                catalog::parse_empty(data)?;
                Command::SegmentList
            }
            "segment.get" => Command::SegmentGet(segment::parse_get(data)?),
            "tag.create" => Command::TagCreate(tag::parse_create(data)?),
            "tag.update" => Command::TagUpdate(tag::parse_update(data)?),
            "tag.delete" => Command::TagDelete(tag::parse_delete(data)?),
            "campaign.create" => Command::CampaignCreate(campaign::parse_fields(false, data)?.1),
            "campaign.update" => {
                let (id, fields) = campaign::parse_fields(true, data)?;
                Command::CampaignUpdate(id.unwrap_or_default(), fields)
            }
            "campaign.get" => Command::CampaignGet(campaign::parse_id(data)?),
            "campaign.list" => Command::CampaignList(campaign::parse_list(data)?),
            "campaign.schedule" => {
                let (id, when) = campaign::parse_schedule(data, now)?;
                Command::CampaignSchedule(id, when)
            }
            "campaign.unschedule" => Command::CampaignUnschedule(campaign::parse_id(data)?),
            "campaign.send_test" => Command::CampaignSendTest(campaign::parse_test_send(data)?),
            "report.campaign.get" => Command::ReportCampaignGet(campaign::parse_id(data)?),
            "account.emails.list" => {
                Command::AccountEmailsList(catalog::parse_account_emails(data)?)
            }
            "account.email.add" => {
                Command::AccountEmailAdd(catalog::parse_account_email_add(data)?)
            }
            "account.privileges.get" => {
                catalog::parse_empty(data)?;
                Command::AccountPrivilegesGet
            }
            "mirror.run" => Command::MirrorRun(catalog::parse_mirror(data)?),
            other => {
                return Err(Rejection::with_fields(
                    ErrorCode::UnknownType,
                    format!("unknown command type {:?}", field::truncate(other, 64)),
                    vec![FieldError::new(
                        "type",
                        format!("must be one of: {}", COMMAND_TYPES.join(", ")),
                    )],
                ));
            }
        })
    }

    /// What a bulk activity would apply for this command, when commands of its kind can be
    /// gathered into one activity (`pipeline::gather`): the kind, the contacts and the targets
    /// (tags or lists); for a delete, the one contact, list, tag or custom field it deletes.
    pub fn gathering(&self) -> Option<tagging::Gathering<'_>> {
        use std::borrow::Cow;
        use tagging::ActivityKind::{
            ContactDelete, ContactErase, FieldDelete, ListAdd, ListDelete, ListRemove, TagAdd,
            TagDelete, TagRemove,
        };
        use tagging::TaggingContacts::{Emails, Ids};
        let one = |id: &String| Cow::Owned(Ids(vec![id.clone()]));
        let (kind, contacts, targets): (_, _, &[String]) = match self {
            Command::ContactTag(t) => (TagAdd, Cow::Borrowed(&t.contacts), &t.tag_ids),
            Command::ContactUntag(t) => (TagRemove, Cow::Borrowed(&t.contacts), &t.tag_ids),
            Command::ListAddContacts(m) => (ListAdd, Cow::Borrowed(&m.contacts), &m.list_ids),
            Command::ListRemoveContacts(m) => (ListRemove, Cow::Borrowed(&m.contacts), &m.list_ids),
            Command::ContactDelete(ContactRef::Id(id)) => (ContactDelete, one(id), &[]),
            Command::ContactDelete(ContactRef::Email(email)) => {
                (ContactDelete, Cow::Owned(Emails(vec![email.clone()])), &[])
            }
            Command::ContactErase(ContactRef::Id(id)) => (ContactErase, one(id), &[]),
            Command::ContactErase(ContactRef::Email(email)) => {
                (ContactErase, Cow::Owned(Emails(vec![email.clone()])), &[])
            }
            Command::ListDelete(id) => (ListDelete, one(id), &[]),
            Command::TagDelete(id) => (TagDelete, one(id), &[]),
            Command::CustomFieldDelete(id) => (FieldDelete, one(id), &[]),
            _ => return None,
        };
        Some(tagging::Gathering {
            kind,
            contacts,
            targets,
        })
    }

    /// Commands with the same key apply in the order they were published.
    pub fn ordering_key(&self) -> Option<String> {
        match self {
            Command::ContactCreate(c) | Command::ContactUpsert(c) => {
                Some(ContactRef::Email(c.email.clone()).key())
            }
            Command::ContactUpdate(target, _)
            | Command::ContactGet(target)
            | Command::ContactDelete(target)
            | Command::ContactErase(target)
            | Command::ContactOptOut(OptOut { target, .. }) => Some(target.key()),
            Command::ContactSignUp(s) => Some(ContactRef::Email(s.email.clone()).key()),
            Command::CampaignUpdate(id, _)
            | Command::CampaignGet(id)
            | Command::CampaignSchedule(id, _)
            | Command::CampaignUnschedule(id)
            | Command::ReportCampaignGet(id) => Some(format!("campaign:{id}")),
            Command::CampaignSendTest(t) => Some(format!("campaign:{}", t.campaign_id)),
            Command::CustomFieldUpdate(s) => s
                .custom_field_id
                .as_ref()
                .map(|id| format!("custom_field:{id}")),
            Command::CustomFieldDelete(id) => Some(format!("custom_field:{id}")),
            Command::TagUpdate(r) => Some(format!("tag:{}", r.tag_id)),
            Command::TagDelete(id) => Some(format!("tag:{id}")),
            Command::ListUpdate(c) => Some(format!("list:{}", c.list_id)),
            Command::ListDelete(id) => Some(format!("list:{id}")),
            _ => None,
        }
    }

    /// Whether the command only reads.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Command::ContactGet(_)
                | Command::CustomFieldList
                | Command::ListList
                | Command::SegmentList
                | Command::SegmentGet(_)
                | Command::CampaignGet(_)
                | Command::CampaignList(_)
                | Command::ReportCampaignGet(_)
                | Command::AccountEmailsList(_)
                | Command::AccountPrivilegesGet
        )
    }
}

#[cfg(test)]
mod tests;
