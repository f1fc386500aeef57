//! Compact contact storage: one small struct per contact in a `Vec` ordered by an immutable
//! insertion sequence (the paging order), with id and lower-cased e-mail indexes. Lists and
//! custom fields are referenced by account-local indexes, so a million contacts fit in a few
//! hundred megabytes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Seconds since the UNIX epoch; contacts carry second-resolution times (reference §0).
pub(crate) type Secs = i64;

/// `permission_to_send` (reference §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Permission {
    Explicit,
    Implicit,
    NotSet,
    PendingConfirmation,
    TempHold,
    Unsubscribed,
}

impl Permission {
    pub(crate) const ALL: [Permission; 6] = [
        Permission::Explicit,
        Permission::Implicit,
        Permission::NotSet,
        Permission::PendingConfirmation,
        Permission::TempHold,
        Permission::Unsubscribed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Permission::Explicit => "explicit",
            Permission::Implicit => "implicit",
            Permission::NotSet => "not_set",
            Permission::PendingConfirmation => "pending_confirmation",
            Permission::TempHold => "temp_hold",
            Permission::Unsubscribed => "unsubscribed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Explicit and implicit contacts can be mailed ("active").
    pub(crate) fn is_active(self) -> bool {
        matches!(self, Permission::Explicit | Permission::Implicit)
    }
}

/// `create_source` / `update_source` / `opt_in_source` / `opt_out_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Source {
    Contact,
    Account,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Contact => "Contact",
            Source::Account => "Account",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "Contact" => Some(Source::Contact),
            "Account" => Some(Source::Account),
            _ => None,
        }
    }
}

/// `confirm_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Confirm {
    Pending,
    Confirmed,
    Off,
}

impl Confirm {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Confirm::Pending => "pending",
            Confirm::Confirmed => "confirmed",
            Confirm::Off => "off",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Phone {
    pub(crate) id: Uuid,
    pub(crate) number: String,
    pub(crate) kind: String,
    pub(crate) created_at: Secs,
    pub(crate) updated_at: Secs,
    pub(crate) create_source: Source,
    pub(crate) update_source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Address {
    pub(crate) id: Uuid,
    pub(crate) kind: String,
    pub(crate) street: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) postal_code: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) created_at: Secs,
    pub(crate) updated_at: Secs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Note {
    pub(crate) id: Uuid,
    pub(crate) created_at: Secs,
    pub(crate) content: String,
}

/// The rarely used subresources, boxed so most contacts pay one pointer for them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Extras {
    pub(crate) phones: Vec<Phone>,
    pub(crate) addresses: Vec<Address>,
    pub(crate) notes: Vec<Note>,
    pub(crate) taggings: Vec<Uuid>,
}

impl Extras {
    fn is_empty(&self) -> bool {
        self.phones.is_empty()
            && self.addresses.is_empty()
            && self.notes.is_empty()
            && self.taggings.is_empty()
    }
}

/// One contact. Optional times use 0 for "absent" to keep the struct small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Contact {
    pub(crate) id: Uuid,
    pub(crate) email: Option<Box<str>>,
    pub(crate) first_name: Option<Box<str>>,
    pub(crate) last_name: Option<Box<str>>,
    pub(crate) job_title: Option<Box<str>>,
    pub(crate) company_name: Option<Box<str>>,
    pub(crate) anniversary: Option<Box<str>>,
    pub(crate) opt_out_reason: Option<Box<str>>,
    /// 0 = not set.
    pub(crate) birthday_month: u8,
    pub(crate) birthday_day: u8,
    pub(crate) permission: Permission,
    pub(crate) confirm: Confirm,
    pub(crate) create_source: Source,
    pub(crate) update_source: Option<Source>,
    pub(crate) opt_in_source: Option<Source>,
    pub(crate) opt_out_source: Option<Source>,
    pub(crate) created_at: Secs,
    pub(crate) updated_at: Secs,
    pub(crate) deleted_at: Secs,
    pub(crate) email_created_at: Secs,
    pub(crate) email_updated_at: Secs,
    pub(crate) opt_in_date: Secs,
    pub(crate) opt_out_date: Secs,
    /// Account-local list indexes (see `Lists`).
    pub(crate) lists: Box<[u32]>,
    /// Account-local custom field indexes with their values.
    pub(crate) custom: Box<[(u32, Box<str>)]>,
    pub(crate) extra: Option<Box<Extras>>,
}

impl Contact {
    /// A blank contact created now.
    pub(crate) fn new(id: Uuid, now: Secs, create_source: Source) -> Self {
        Self {
            id,
            email: None,
            first_name: None,
            last_name: None,
            job_title: None,
            company_name: None,
            anniversary: None,
            opt_out_reason: None,
            birthday_month: 0,
            birthday_day: 0,
            permission: Permission::NotSet,
            confirm: Confirm::Off,
            create_source,
            update_source: None,
            opt_in_source: None,
            opt_out_source: None,
            created_at: now,
            updated_at: now,
            deleted_at: 0,
            email_created_at: 0,
            email_updated_at: 0,
            opt_in_date: 0,
            opt_out_date: 0,
            lists: Box::new([]),
            custom: Box::new([]),
            extra: None,
        }
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted_at != 0
    }

    pub(crate) fn extras(&self) -> &Extras {
        static EMPTY: Extras = Extras {
            phones: Vec::new(),
            addresses: Vec::new(),
            notes: Vec::new(),
            taggings: Vec::new(),
        };
        self.extra.as_deref().unwrap_or(&EMPTY)
    }

    /// Mutable subresources, allocated on first use and dropped again when emptied.
    pub(crate) fn with_extras(&mut self, f: impl FnOnce(&mut Extras)) {
        let mut extra = self.extra.take().unwrap_or_default();
        f(&mut extra);
        if !extra.is_empty() {
            self.extra = Some(extra);
        }
    }

    /// Moves the permission, keeping the opt-in/opt-out bookkeeping consistent.
    pub(crate) fn set_permission(&mut self, permission: Permission, source: Source, now: Secs) {
        if permission == self.permission {
            return;
        }
        if permission == Permission::Unsubscribed {
            self.opt_out_source = Some(source);
            self.opt_out_date = now;
        } else {
            if permission.is_active() {
                self.opt_in_source = Some(source);
                self.opt_in_date = now;
            }
            self.opt_out_source = None;
            self.opt_out_date = 0;
            self.opt_out_reason = None;
        }
        self.confirm = if permission == Permission::PendingConfirmation {
            Confirm::Pending
        } else if permission == Permission::Explicit && self.confirm == Confirm::Pending {
            Confirm::Confirmed
        } else {
            self.confirm
        };
        self.permission = permission;
        self.email_updated_at = now;
    }
}

/// Lower-cased e-mail used as the uniqueness key (case-insensitive, all states).
pub(crate) fn email_key(email: &str) -> Box<str> {
    email.trim().to_lowercase().into_boxed_str()
}

/// The contacts of one account.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ContactStore {
    /// Index = insertion sequence; never reordered, never shrunk (deletion is soft).
    pub(crate) rows: Vec<Contact>,
    #[serde(skip)]
    by_id: HashMap<Uuid, u32>,
    #[serde(skip)]
    by_email: HashMap<Box<str>, u32>,
}

impl ContactStore {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            rows: Vec::with_capacity(n),
            by_id: HashMap::with_capacity(n),
            by_email: HashMap::with_capacity(n),
        }
    }

    /// Rebuilds the indexes after loading from a state file.
    pub(crate) fn rebuild_indexes(&mut self) {
        self.by_id = HashMap::with_capacity(self.rows.len());
        self.by_email = HashMap::with_capacity(self.rows.len());
        for (index, contact) in self.rows.iter().enumerate() {
            let index = index as u32;
            self.by_id.insert(contact.id, index);
            if let Some(email) = &contact.email {
                self.by_email.insert(email_key(email), index);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn find(&self, id: &Uuid) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn find_email(&self, email: &str) -> Option<u32> {
        self.by_email.get(&email_key(email)).copied()
    }

    pub(crate) fn get(&self, index: u32) -> &Contact {
        &self.rows[index as usize]
    }

    pub(crate) fn get_mut(&mut self, index: u32) -> &mut Contact {
        &mut self.rows[index as usize]
    }

    /// Appends a contact whose e-mail is known to be free; returns its index.
    pub(crate) fn insert(&mut self, contact: Contact) -> u32 {
        let index = self.rows.len() as u32;
        self.by_id.insert(contact.id, index);
        if let Some(email) = &contact.email {
            self.by_email.insert(email_key(email), index);
        }
        self.rows.push(contact);
        index
    }

    /// Changes a contact's e-mail (the new one is known to be free).
    pub(crate) fn set_email(&mut self, index: u32, email: Option<Box<str>>, now: Secs) {
        let contact = &mut self.rows[index as usize];
        if let Some(old) = contact.email.take() {
            self.by_email.remove(&email_key(&old));
        }
        if let Some(new) = &email {
            self.by_email.insert(email_key(new), index);
            if contact.email_created_at == 0 {
                contact.email_created_at = now;
            }
            contact.email_updated_at = now;
        }
        contact.email = email;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_lookup_is_case_insensitive() {
        let mut store = ContactStore::default();
        let mut contact = Contact::new(Uuid::nil(), 1, Source::Account);
        contact.email = Some("Pat@Example.com".into());
        let index = store.insert(contact);
        assert_eq!(store.find_email("pat@example.COM"), Some(index));
        store.set_email(index, Some("new@example.com".into()), 2);
        assert_eq!(store.find_email("pat@example.com"), None);
        assert_eq!(store.find_email("NEW@example.com"), Some(index));
    }

    #[test]
    fn unsubscribing_records_the_opt_out_and_resubscribing_clears_it() {
        let mut contact = Contact::new(Uuid::nil(), 1, Source::Account);
        contact.set_permission(Permission::Implicit, Source::Account, 1);
        contact.set_permission(Permission::Unsubscribed, Source::Contact, 5);
        assert_eq!(contact.opt_out_date, 5);
        assert_eq!(contact.opt_out_source, Some(Source::Contact));
        contact.set_permission(Permission::Explicit, Source::Contact, 9);
        assert_eq!(contact.opt_out_date, 0);
        assert_eq!(contact.opt_in_date, 9);
    }

    #[test]
    fn a_contact_stays_small() {
        assert!(
            std::mem::size_of::<Contact>() <= 256,
            "Contact is {} bytes",
            std::mem::size_of::<Contact>()
        );
    }
}
