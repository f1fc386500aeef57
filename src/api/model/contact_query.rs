//! The filters of `GET /contacts` (shared/reference/constant-contact-v3.md §4.2) and their
//! query parameters.

use chrono::{DateTime, Utc};

use crate::api::model::contacts::Include;
use crate::api::model::enums::string_enum;
use crate::api::model::time;

string_enum! {
    /// The `status` filter of `GET /contacts` (the default leaves deleted contacts out).
    pub enum ContactStatus {
        All = "all",
        Active = "active",
        Deleted = "deleted",
        NotSet = "not_set",
        PendingConfirmation = "pending_confirmation",
        TempHold = "temp_hold",
        Unsubscribed = "unsubscribed",
    }
}

/// Filters of `GET /contacts` (shared/reference/constant-contact-v3.md §4.2). Empty or `None`
/// fields are not sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactQuery {
    pub status: Vec<ContactStatus>,
    pub email: Option<String>,
    /// Up to 25 list ids.
    pub lists: Vec<String>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub include: Vec<Include>,
    pub include_count: bool,
    /// 1–500; the API's default is 50.
    pub limit: Option<u32>,
}

impl ContactQuery {
    /// The query parameters, in a stable order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if !self.status.is_empty() {
            let status = self
                .status
                .iter()
                .map(ContactStatus::as_str)
                .collect::<Vec<_>>()
                .join(",");
            pairs.push(("status", status));
        }
        if let Some(email) = &self.email {
            pairs.push(("email", email.clone()));
        }
        if !self.lists.is_empty() {
            pairs.push(("lists", self.lists.join(",")));
        }
        for (key, at) in [
            ("updated_after", &self.updated_after),
            ("updated_before", &self.updated_before),
            ("created_after", &self.created_after),
            ("created_before", &self.created_before),
        ] {
            if let Some(at) = at {
                pairs.push((key, time::format(at)));
            }
        }
        if !self.include.is_empty() {
            pairs.push(("include", Include::join(&self.include)));
        }
        if self.include_count {
            pairs.push(("include_count", "true".to_owned()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_query_sends_only_what_was_set() {
        assert!(ContactQuery::default().to_pairs().is_empty());
        let query = ContactQuery {
            status: vec![ContactStatus::All],
            email: Some("pat@example.com".into()),
            lists: vec!["l1".into(), "l2".into()],
            updated_after: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).single(),
            include: vec![Include::CustomFields, Include::ListMemberships],
            include_count: true,
            limit: Some(500),
            ..ContactQuery::default()
        };
        let pairs = query.to_pairs();
        let expected: Vec<(&str, String)> = vec![
            ("status", "all".into()),
            ("email", "pat@example.com".into()),
            ("lists", "l1,l2".into()),
            ("updated_after", "2024-01-02T03:04:05Z".into()),
            ("include", "custom_fields,list_memberships".into()),
            ("include_count", "true".into()),
            ("limit", "500".into()),
        ];
        assert_eq!(pairs, expected);
    }
}
