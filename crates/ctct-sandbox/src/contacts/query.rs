//! `GET /contacts` filtering and cursor paging (reference §4.2). Contacts are scanned in
//! insertion order; a cursor carries the limit, every filter and the sequence number to
//! resume at, so a full pass is O(N) in total and every matching contact is returned exactly
//! once even when contacts are updated or created between pages (updates never move a
//! contact; new contacts are appended and picked up by later pages).

use uuid::Uuid;

use super::model::{Contact, Permission};
use super::render::Include;
use crate::clock::{Millis, parse_instant};
use crate::errors::{ApiError, Area};
use crate::http::{QueryMap, decode_cursor, encode_cursor};
use crate::state::Account;

/// Filter keys carried from the first request into every cursor.
const CARRIED: [&str; 12] = [
    "status",
    "email",
    "lists",
    "tags",
    "updated_after",
    "updated_before",
    "created_after",
    "created_before",
    "optout_after",
    "optout_before",
    "include",
    "sms_status",
];

/// Status selection bits; `0` means the default (every contact that is not deleted).
mod status {
    pub(super) const ALL: u16 = 1;
    pub(super) const ACTIVE: u16 = 2;
    pub(super) const DELETED: u16 = 4;
    pub(super) const NOT_SET: u16 = 8;
    pub(super) const PENDING: u16 = 16;
    pub(super) const TEMP_HOLD: u16 = 32;
    pub(super) const UNSUBSCRIBED: u16 = 64;
    pub(super) const EXPLICIT: u16 = 128;
    pub(super) const IMPLICIT: u16 = 256;
}

/// A contact filter shared by `GET /contacts` and exports.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContactFilter {
    status: u16,
    email: Option<String>,
    /// `Some(empty)` when every requested list is unknown: nothing matches.
    lists: Option<Vec<u32>>,
    tags: Option<Vec<Uuid>>,
    contact_ids: Option<Vec<Uuid>>,
    exclude_ids: Vec<Uuid>,
    updated: (Option<Millis>, Option<Millis>),
    created: (Option<Millis>, Option<Millis>),
    optout: (Option<Millis>, Option<Millis>),
    opted_in_since: Option<i64>,
}

fn time_param(query: &QueryMap, key: &str) -> Result<Option<Millis>, ApiError> {
    query
        .get(key)
        .map(|v| {
            parse_instant(v).ok_or_else(|| {
                ApiError::validation(
                    Area::Contacts,
                    format!("{key} must be an ISO-8601 date-time"),
                )
            })
        })
        .transpose()
}

/// `after` is inclusive, `before` exclusive, both compared with second-resolution times.
fn in_range(secs: i64, (after, before): (Option<Millis>, Option<Millis>)) -> bool {
    let ms = secs * 1000;
    after.is_none_or(|a| ms >= a) && before.is_none_or(|b| ms < b)
}

impl ContactFilter {
    /// Parses the `status` csv (`all`, `active`, `deleted`, a permission value…).
    pub(crate) fn set_status(&mut self, items: &[String]) -> Result<(), ApiError> {
        for item in items {
            self.status |= match item.as_str() {
                "all" => status::ALL,
                "active" => status::ACTIVE,
                "deleted" | "removed" => status::DELETED,
                "not_set" => status::NOT_SET,
                "pending_confirmation" => status::PENDING,
                "temp_hold" => status::TEMP_HOLD,
                "unsubscribed" => status::UNSUBSCRIBED,
                "explicit" => status::EXPLICIT,
                "implicit" => status::IMPLICIT,
                other => {
                    return Err(ApiError::validation(
                        Area::Contacts,
                        format!("status {other} is not a valid value"),
                    ));
                }
            };
        }
        Ok(())
    }

    /// Restricts to members of any of these lists (unknown ids match nothing).
    pub(crate) fn set_lists(&mut self, account: &Account, ids: &[Uuid]) {
        self.lists = Some(
            ids.iter()
                .filter_map(|id| account.lists.find_live(id))
                .collect(),
        );
    }

    pub(crate) fn set_contact_ids(&mut self, ids: Vec<Uuid>) {
        self.contact_ids = Some(ids);
    }

    pub(crate) fn set_exclude(&mut self, ids: Vec<Uuid>) {
        self.exclude_ids = ids;
    }

    pub(crate) fn set_tags(&mut self, ids: Vec<Uuid>) {
        self.tags = Some(ids);
    }

    /// Contacts that opted in at or after this second (export `new_subscriber`).
    pub(crate) fn set_opted_in_since(&mut self, secs: i64) {
        self.opted_in_since = Some(secs);
    }

    pub(crate) fn matches(&self, c: &Contact) -> bool {
        let status_ok = if self.status == 0 {
            !c.is_deleted()
        } else if self.status & status::ALL != 0 {
            true
        } else if c.is_deleted() {
            self.status & status::DELETED != 0
        } else {
            let bit = match c.permission {
                Permission::Explicit => status::EXPLICIT,
                Permission::Implicit => status::IMPLICIT,
                Permission::NotSet => status::NOT_SET,
                Permission::PendingConfirmation => status::PENDING,
                Permission::TempHold => status::TEMP_HOLD,
                Permission::Unsubscribed => status::UNSUBSCRIBED,
            };
            self.status & bit != 0
                || (self.status & status::ACTIVE != 0 && c.permission.is_active())
        };
        status_ok
            && self.email.as_deref().is_none_or(|e| {
                c.email
                    .as_deref()
                    .is_some_and(|ce| ce.eq_ignore_ascii_case(e))
            })
            && self
                .lists
                .as_deref()
                .is_none_or(|ls| c.lists.iter().any(|l| ls.contains(l)))
            && self
                .tags
                .as_deref()
                .is_none_or(|ts| c.extras().taggings.iter().any(|t| ts.contains(t)))
            && self
                .contact_ids
                .as_deref()
                .is_none_or(|ids| ids.contains(&c.id))
            && !self.exclude_ids.contains(&c.id)
            && in_range(c.updated_at, self.updated)
            && in_range(c.created_at, self.created)
            && (self.optout == (None, None)
                || (c.opt_out_date != 0 && in_range(c.opt_out_date, self.optout)))
            && self
                .opted_in_since
                .is_none_or(|s| c.opt_in_date != 0 && c.opt_in_date >= s)
    }

    /// The single candidate when filtering by e-mail (index lookup instead of a scan).
    fn email_candidate(&self, account: &Account) -> Option<Option<u32>> {
        self.email
            .as_deref()
            .map(|e| account.contacts.find_email(e))
    }
}

/// A parsed `GET /contacts` request.
#[derive(Debug, Clone)]
pub(crate) struct ContactQuery {
    pub(crate) filter: ContactFilter,
    pub(crate) include: Include,
    pub(crate) include_count: bool,
    limit: u32,
    start: usize,
    carry: Vec<(String, String)>,
}

impl ContactQuery {
    pub(crate) fn parse(account: &Account, query: &QueryMap) -> Result<Self, ApiError> {
        let from_cursor = query.get("cursor").is_some();
        let effective = match query.get("cursor") {
            Some(cursor) => decode_cursor(Area::Contacts, cursor)?,
            None => query.clone(),
        };
        if effective.get("segment_id").is_some() {
            return Err(ApiError::not_found(
                Area::Contacts,
                "segment_id: the sandbox does not select contacts by segment",
            ));
        }
        let limit = effective.limit(Area::Contacts, 50, 500)?;
        let start = match effective.get("next") {
            Some(n) => n
                .parse()
                .map_err(|_| ApiError::validation(Area::Contacts, "cursor is invalid"))?,
            None => 0,
        };
        let mut filter = ContactFilter::default();
        filter.set_status(&effective.csv("status"))?;
        filter.email = effective.get("email").map(|e| e.trim().to_owned());
        let lists = effective.csv("lists");
        if lists.len() > 25 {
            return Err(ApiError::validation(
                Area::Contacts,
                "lists accepts at most 25 list ids",
            ));
        }
        if !lists.is_empty() {
            let ids = parse_ids(&lists, "lists")?;
            filter.set_lists(account, &ids);
        }
        let tags = effective.csv("tags");
        if !tags.is_empty() {
            filter.set_tags(parse_ids(&tags, "tags")?);
        }
        filter.updated = (
            time_param(&effective, "updated_after")?,
            time_param(&effective, "updated_before")?,
        );
        filter.created = (
            time_param(&effective, "created_after")?,
            time_param(&effective, "created_before")?,
        );
        filter.optout = (
            time_param(&effective, "optout_after")?,
            time_param(&effective, "optout_before")?,
        );
        let include = Include::parse(&effective.csv("include")).map_err(|bad| {
            ApiError::validation(
                Area::Contacts,
                format!("include {bad} is not a valid value"),
            )
        })?;
        let include_count = !from_cursor && effective.bool(Area::Contacts, "include_count")?;
        let carry = CARRIED
            .iter()
            .filter_map(|k| effective.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
            .collect();
        Ok(Self {
            filter,
            include,
            include_count,
            limit,
            start,
            carry,
        })
    }

    fn cursor_at(&self, next: usize) -> String {
        let mut pairs = vec![
            ("limit".to_owned(), self.limit.to_string()),
            ("next".to_owned(), next.to_string()),
        ];
        pairs.extend(self.carry.iter().cloned());
        encode_cursor(&pairs)
    }

    /// The matching contact indexes of this page and the cursor of the next one.
    pub(crate) fn page(&self, account: &Account) -> (Vec<u32>, Option<String>) {
        let rows = &account.contacts.rows;
        if let Some(candidate) = self.filter.email_candidate(account) {
            let hit = candidate
                .filter(|&i| i as usize >= self.start && self.filter.matches(&rows[i as usize]));
            return (hit.into_iter().collect(), None);
        }
        let mut out = Vec::with_capacity(self.limit as usize);
        let mut next = None;
        for (index, contact) in rows.iter().enumerate().skip(self.start) {
            if !self.filter.matches(contact) {
                continue;
            }
            if out.len() == self.limit as usize {
                // Resume exactly at the next match: everything before it has been scanned.
                next = Some(self.cursor_at(index));
                break;
            }
            out.push(index as u32);
        }
        (out, next)
    }

    /// Total matches (`include_count`), one pass.
    pub(crate) fn count(&self, account: &Account) -> usize {
        if let Some(candidate) = self.filter.email_candidate(account) {
            return candidate
                .filter(|&i| self.filter.matches(account.contacts.get(i)))
                .map_or(0, |_| 1);
        }
        account
            .contacts
            .rows
            .iter()
            .filter(|c| self.filter.matches(c))
            .count()
    }
}

pub(crate) fn parse_ids(items: &[String], field: &str) -> Result<Vec<Uuid>, ApiError> {
    items
        .iter()
        .map(|raw| {
            Uuid::parse_str(raw.trim()).map_err(|_| {
                ApiError::validation(
                    Area::Contacts,
                    format!("{field} contains an invalid id: {raw}"),
                )
            })
        })
        .collect()
}
