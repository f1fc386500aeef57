//! Typed request and response models of the Constant Contact V3 API, one file per family.
//!
//! Responses decode leniently (shared/reference/constant-contact-v3.md §0): unknown fields are
//! ignored, anything that may be absent is an `Option` or defaults to empty, enumerations keep
//! values they do not know (`Other(..)`), and a timestamp that does not parse becomes `None`
//! instead of failing the whole page. Request bodies leave out every field that is `None`, so
//! nothing is sent that the caller did not set.
//!
//! ```text
//! time          lenient timestamp decoding (RFC 3339 with or without fraction, bare dates)
//! enums         string enumerations with a fallback for values added later
//! paging        `_links.next.href`, followed verbatim
//! contacts      Contact and its subresources, ContactsPage, Include
//! contact_query ContactQuery: the filters of GET /contacts
//! contact_input ContactCreate, ContactPut (+ Contact::to_put), SignUpForm
//! custom_fields CustomField, its create/replace bodies, CustomFieldsPage
//! lists         ContactList, ListInput, ListQuery, ListsPage
//! activities    Activity (bulk jobs), ContactsJsonImport/ImportRow, ExportRequest,
//!               TaggingRequest/TaggingSource, MembershipRequest/MembershipSource,
//!               DeleteRequest (the four bulk deletes)
//! campaigns     EmailCampaign, CampaignCreate, CampaignsPage, statuses and roles
//! campaign_activity  CampaignActivity (+ to_put), schedules, test sends
//! account       account e-mails, user privileges, account summary
//! reports       campaign summaries, stats by ids, tracking reports and link reports
//! segments      Segment (integer ids), SegmentQuery, SegmentsPage
//! tags          Tag, TagCreate, TagPut, TagsPage
//! ```

pub mod account;
pub mod activities;
pub mod campaign_activity;
pub mod campaigns;
pub mod contact_input;
pub mod contact_query;
pub mod contacts;
pub mod custom_fields;
pub mod enums;
pub mod lists;
pub mod paging;
pub mod reports;
pub mod segments;
pub mod tags;
pub mod time;

pub use account::{
    AccountEmail, AccountEmailFilter, AccountPhysicalAddress, AccountSummary, CompanyLogo,
    SummaryExtra, UserPrivilege,
};
pub use activities::{
    Activity, ActivityCounts, ActivityLinks, ActivityState, ContactsJsonImport, DeleteRequest,
    ExportExclude, ExportRequest, ImportRow, MembershipRequest, MembershipSource, TaggingRequest,
    TaggingSource,
};
pub use campaign_activity::{
    CampaignActivity, CampaignActivityPut, Schedule, ScheduleAt, TestSend,
};
pub use campaigns::{
    ActivityReference, CampaignActivityCreate, CampaignActivityInclude, CampaignActivityRole,
    CampaignActivityStatus, CampaignCreate, CampaignQuery, CampaignStatus, CampaignsPage,
    EmailCampaign, PhysicalAddress,
};
pub use contact_input::{
    ContactCreate, ContactPut, EmailAddressInput, PhoneNumberInput, SignUpForm, SignUpResult,
    StreetAddressInput,
};
pub use contact_query::{ContactQuery, ContactStatus};
pub use contacts::{
    Contact, ContactCustomField, ContactsPage, EmailAddress, Include, Note, PermissionToSend,
    PhoneNumber, Source, StreetAddress,
};
pub use custom_fields::{
    CustomField, CustomFieldChoice, CustomFieldChoiceInput, CustomFieldCreate, CustomFieldPut,
    CustomFieldsPage,
};
pub use lists::{ContactList, ListInput, ListQuery, ListStatus, ListsPage, MembershipCount};
pub use reports::{
    ActivityStats, ActivityStatsReport, CampaignStats, CampaignStatsReport, CampaignSummariesPage,
    CampaignSummary, EmailStats, LinkClickCount, LinkReport, MAX_STATS_ACTIVITY_IDS,
    MAX_STATS_CAMPAIGN_IDS, MAX_SUMMARY_LIMIT, MAX_TRACKING_LIMIT, StatsPercents, StatsReport,
    TrackingActivity, TrackingActivityType, TrackingPage, TrackingReport, UniqueCounts,
};
pub use segments::{Segment, SegmentQuery, SegmentSort, SegmentsPage};
pub use tags::{Tag, TagCreate, TagPut, TagsPage};

#[cfg(test)]
pub(crate) mod fixtures {
    //! Captured API answers (amp-labs/connectors, MIT; copied byte for byte from
    //! shared/reference/fixtures-amp-labs-constantcontact, see fixtures/SOURCES.md).

    pub const CONTACTS_FIRST_PAGE: &str = include_str!("fixtures/read_contacts_1-first-page.json");
    pub const CONTACTS_LAST_PAGE: &str = include_str!("fixtures/read_contacts_2-second-page.json");
    pub const CUSTOM_FIELDS: &str = include_str!("fixtures/read_contacts_custom-fields.json");
    pub const ERROR_BODY: &str = include_str!("fixtures/read_contact-ids-error.json");
    pub const CREATED_CONTACT: &str = include_str!("fixtures/write-contact.json");
    pub const CREATED_CAMPAIGN: &str = include_str!("fixtures/write-email-campaign.json");
}

#[cfg(test)]
mod tests {
    use super::fixtures;
    use crate::api::error::parse_error_body;

    #[test]
    fn the_captured_validation_error_decodes_as_an_error_list() {
        let errors = parse_error_body(fixtures::ERROR_BODY.as_bytes());
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].error_key.as_deref(),
            Some("contacts.api.validation.error")
        );
        assert_eq!(
            errors[0].error_message.as_deref(),
            Some("Descriptive error message.")
        );
    }
}
