//! The account (shared/reference/constant-contact-v3.md §9): its e-mail addresses (a campaign's
//! `from_email` must be a CONFIRMED one), the connected user's privileges, and the summary.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::model::enums::string_enum;
use crate::api::model::time;

/// An e-mail address of the account. `POST /account/emails` answers with the first three
/// fields only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AccountEmail {
    #[serde(default)]
    pub email_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_id: Option<i64>,
    /// `CONFIRMED` or `UNCONFIRMED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_status: Option<String>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub confirm_time: Option<DateTime<Utc>>,
    /// `SITE_OWNER`, `SUPPORT`, `FORCEVERIFY` or `PARTNER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_source_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_roles: Vec<String>,
}

impl AccountEmail {
    /// Whether the address may be used as a campaign's `from_email` / `reply_to_email`.
    pub fn is_confirmed(&self) -> bool {
        self.confirm_status
            .as_deref()
            .is_some_and(|status| status.eq_ignore_ascii_case("CONFIRMED"))
    }
}

/// The one filter `GET /account/emails` accepts at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccountEmailFilter {
    #[default]
    All,
    Confirmed,
    Unconfirmed,
    /// A role code: `CONTACT`, `BILLING`, `JOURNALING`, `REPLY_TO` or `OTHER`.
    Role(String),
    Address(String),
}

impl AccountEmailFilter {
    /// The query parameter, if any.
    pub fn to_pair(&self) -> Option<(&'static str, String)> {
        match self {
            AccountEmailFilter::All => None,
            AccountEmailFilter::Confirmed => Some(("confirm_status", "CONFIRMED".to_owned())),
            AccountEmailFilter::Unconfirmed => Some(("confirm_status", "UNCONFIRMED".to_owned())),
            AccountEmailFilter::Role(role) => Some(("role_code", role.clone())),
            AccountEmailFilter::Address(address) => Some(("email_address", address.clone())),
        }
    }
}

/// A privilege of the connected user (`GET /account/user/privileges`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct UserPrivilege {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privilege_id: Option<i64>,
    /// e.g. `campaign:create`.
    #[serde(default)]
    pub privilege_name: String,
}

string_enum! {
    /// Optional parts of the account summary (`extra_fields=`).
    pub enum SummaryExtra {
        PhysicalAddress = "physical_address",
        CompanyLogo = "company_logo",
    }
}

/// `GET /account/summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AccountSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded_partner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_code: Option<String>,
    /// IANA zone, e.g. `US/Eastern`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_address: Option<AccountPhysicalAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_logo: Option<CompanyLogo>,
}

/// The account's physical address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AccountPhysicalAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
}

/// The account's logo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CompanyLogo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn account_emails_decode_as_a_bare_array_and_tell_confirmed_ones() {
        let emails: Vec<AccountEmail> = serde_json::from_value(json!([
            {"email_address": "news@acme.example", "email_id": 1, "confirm_status": "CONFIRMED",
             "confirm_time": "2016-01-23T13:48:44.108Z", "confirm_source_type": "SITE_OWNER",
             "roles": ["CONTACT", "REPLY_TO"], "pending_roles": [], "brand_new": 1},
            {"email_address": "new@acme.example", "email_id": 9007199254740993_i64, "confirm_status": "UNCONFIRMED",
             "confirm_time": "bad"}
        ]))
        .expect("decodes");
        assert!(emails[0].is_confirmed());
        assert_eq!(emails[0].roles, ["CONTACT", "REPLY_TO"]);
        assert!(!emails[1].is_confirmed());
        assert_eq!(emails[1].email_id, Some(9_007_199_254_740_993));
        assert_eq!(emails[1].confirm_time, None);
    }

    #[test]
    fn the_email_filter_sends_at_most_one_parameter() {
        assert_eq!(AccountEmailFilter::All.to_pair(), None);
        assert_eq!(
            AccountEmailFilter::Confirmed.to_pair(),
            Some(("confirm_status", "CONFIRMED".to_owned()))
        );
        assert_eq!(
            AccountEmailFilter::Address("a@b.example".into()).to_pair(),
            Some(("email_address", "a@b.example".to_owned()))
        );
        assert_eq!(
            AccountEmailFilter::Role("REPLY_TO".into()).to_pair(),
            Some(("role_code", "REPLY_TO".to_owned()))
        );
    }

    #[test]
    fn privileges_and_the_summary_decode_leniently() {
        let privileges: Vec<UserPrivilege> = serde_json::from_value(
            json!([{"privilege_id": 30, "privilege_name": "campaign:create"}, {}]),
        )
        .expect("decodes");
        assert_eq!(privileges[0].privilege_name, "campaign:create");
        assert_eq!(privileges[1].privilege_id, None);
        let summary: AccountSummary = serde_json::from_value(json!({
            "contact_email": "owner@acme.example", "encoded_account_id": "p07e1l8cdif9dl",
            "time_zone_id": "US/Eastern", "physical_address": {"address_line1": "1 Main St", "city": "Boston",
            "country_code": "US"}, "company_logo": {"url": "https://files.example/logo.png"}, "billing": {"x": 1}
        }))
        .expect("decodes");
        assert_eq!(
            summary.encoded_account_id.as_deref(),
            Some("p07e1l8cdif9dl")
        );
        assert_eq!(
            summary.physical_address.and_then(|a| a.city).as_deref(),
            Some("Boston")
        );
        assert!(summary.company_logo.is_some());
    }
}
