//! Deterministic seeding: for a given seed and sandbox time the same custom fields, lists,
//! contacts (unique e-mails, names, custom-field values, list memberships, created/updated
//! times spread over the past two years, a few unsubscribed and deleted), campaigns, segments
//! and the confirmed owner e-mail (with 0 contacts: an empty account with just that e-mail).
//! Contacts go straight into the compact store, so a million of them
//! take a few seconds and a few hundred megabytes.

use super::account::AccountInfo;
use super::activities::Activities;
use super::campaigns::{Campaigns, NewActivity, Status};
use super::clock::{MS_PER_DAY, Millis};
use super::contacts::model::{Contact, ContactStore, Permission, Source};
use super::custom_fields::{CustomFields, create_field};
use super::lists::{Lists, create_list};
use super::logs::EffectLog;
use super::reports::Reports;
use super::rng::SplitMix64;
use super::segments::{self, Segments};
use super::state::{Account, Cx, DEFAULT_ROWS_PER_SEC};

const FIRST_NAMES: [&str; 24] = [
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kira",
    "Liam", "Maya", "Noah", "Olga", "Pat", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wen",
    "Yusuf",
];
const LAST_NAMES: [&str; 24] = [
    "Adams", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones",
    "Khan", "Lang", "Moreau", "Nakamura", "Okafor", "Patel", "Quist", "Rossi", "Silva", "Turner",
    "Ueda", "Vargas", "Walsh", "Young",
];
const DOMAINS: [&str; 4] = ["example.com", "example.org", "example.net", "mail.example"];
const JOBS: [&str; 6] = [
    "Engineer", "Teacher", "Designer", "Manager", "Nurse", "Analyst",
];
const COMPANIES: [&str; 5] = ["Acme Corp.", "Globex", "Initech", "Umbrella", "Hooli"];
const FIELD_POOL: [(&str, &str); 6] = [
    ("Favorite Color", "string"),
    ("Membership Level", "string"),
    ("Hobby", "string"),
    ("Referral Code", "string"),
    ("Signup Date", "date"),
    ("Shoe Size", "string"),
];
const LIST_POOL: [&str; 7] = [
    "Newsletter",
    "Customers",
    "Prospects",
    "VIP",
    "Events",
    "Partners",
    "Webinar Attendees",
];
const CAMPAIGN_NAMES: [&str; 3] = ["Spring Newsletter", "Product Launch", "Holiday Sale"];
const COLORS: [&str; 6] = ["Red", "Green", "Blue", "Teal", "Orange", "Purple"];
const LEVELS: [&str; 4] = ["Bronze", "Silver", "Gold", "Platinum"];
const HOBBIES: [&str; 6] = [
    "Skiing",
    "Chess",
    "Cycling",
    "Baking",
    "Hiking",
    "Photography",
];

const TWO_YEARS_SECS: i64 = 730 * 86_400;

fn field_value(rng: &mut SplitMix64, label: &str, now_secs: i64) -> String {
    match label {
        "Favorite Color" => (*rng.pick(&COLORS)).to_owned(),
        "Membership Level" => (*rng.pick(&LEVELS)).to_owned(),
        "Hobby" => (*rng.pick(&HOBBIES)).to_owned(),
        "Referral Code" => format!("R{:06}", rng.below(1_000_000)),
        "Signup Date" => {
            let secs = now_secs - rng.below(TWO_YEARS_SECS as u64) as i64;
            super::clock::fmt_date(secs * 1000)
        }
        _ => format!("{}", 36 + rng.below(12)),
    }
}

/// Replaces the account's data with seeded data (`contacts` contacts, deterministic in
/// `seed` and `now`). The account id, platform user and tokens are kept.
pub(crate) fn seed_account(
    account: &mut Account,
    number: usize,
    contacts: usize,
    seed: u64,
    now: Millis,
) {
    let mut rng = SplitMix64::new(seed ^ 0x5EED_0000_0000_0000 ^ number as u64);
    account.rng = SplitMix64::new(rng.next_u64());
    account.contacts = ContactStore::with_capacity(contacts);
    account.fields = CustomFields::default();
    account.lists = Lists::default();
    account.activities = Activities::default();
    account.campaigns = Campaigns::default();
    account.reports = Reports::default();
    account.segments = Segments::default();
    account.tags = Default::default();
    account.info = AccountInfo::new(&account.id, number, now - TWO_YEARS_SECS * 1000);
    account.next_due = 0;
    if contacts == 0 {
        // An empty account: only the confirmed owner e-mail.
        return;
    }
    let mut sink = EffectLog::default();
    let mut cx = Cx {
        now: now - TWO_YEARS_SECS * 1000,
        command_id: None,
        effects: &mut sink,
        rows_per_sec: DEFAULT_ROWS_PER_SEC,
    };

    let field_count = rng.range(3, 5) as usize;
    let mut fields = Vec::new();
    for (label, kind) in FIELD_POOL.iter().take(field_count) {
        if let Ok(index) = create_field(account, &mut cx, label, kind, None, None) {
            fields.push((index, *label));
        }
    }
    let list_count = rng.range(3, 5) as usize;
    let mut lists = Vec::new();
    for name in LIST_POOL.iter().take(list_count) {
        if let Ok(index) = create_list(account, &mut cx, name, None, *name == "Newsletter") {
            lists.push(index);
        }
    }

    let now_secs = now.div_euclid(1000);
    let start = now_secs - TWO_YEARS_SECS;
    let slot = (TWO_YEARS_SECS / contacts.max(1) as i64).max(1);
    for i in 0..contacts {
        let created = (start + i as i64 * slot + rng.below(slot as u64) as i64).min(now_secs);
        let updated = if rng.chance(0.5) {
            created
        } else {
            created + rng.below((now_secs - created).max(0) as u64 + 1) as i64
        };
        let first = *rng.pick(&FIRST_NAMES);
        let last = *rng.pick(&LAST_NAMES);
        let domain = *rng.pick(&DOMAINS);
        let mut contact = Contact::new(rng.uuid(), created, Source::Account);
        contact.email = Some(
            format!(
                "{}.{}.{i}@{domain}",
                first.to_lowercase(),
                last.to_lowercase()
            )
            .into_boxed_str(),
        );
        contact.email_created_at = created;
        contact.email_updated_at = created;
        contact.first_name = Some(first.into());
        contact.last_name = Some(last.into());
        if rng.chance(0.3) {
            contact.job_title = Some((*rng.pick(&JOBS)).into());
        }
        if rng.chance(0.3) {
            contact.company_name = Some((*rng.pick(&COMPANIES)).into());
        }
        if rng.chance(0.2) {
            contact.birthday_month = rng.range(1, 12) as u8;
            contact.birthday_day = rng.range(1, 28) as u8;
        }
        let permission = if rng.chance(0.1) {
            Permission::Explicit
        } else {
            Permission::Implicit
        };
        contact.set_permission(permission, Source::Account, created);
        if updated > created {
            contact.update_source = Some(Source::Account);
        }
        contact.updated_at = updated;
        if rng.chance(0.03) {
            contact.set_permission(Permission::Unsubscribed, Source::Contact, updated);
            contact.opt_out_reason = Some("No longer interested".into());
        }
        let value_count = rng.below(4) as usize;
        let mut custom: Vec<(u32, Box<str>)> = Vec::with_capacity(value_count);
        for _ in 0..value_count.min(fields.len()) {
            let (field, label) = fields[rng.below(fields.len() as u64) as usize];
            if !custom.iter().any(|(f, _)| *f == field) {
                custom.push((
                    field,
                    field_value(&mut rng, label, now_secs).into_boxed_str(),
                ));
            }
        }
        contact.custom = custom.into_boxed_slice();
        let membership_count = rng.range(1, 3) as usize;
        let mut memberships: Vec<u32> = Vec::with_capacity(membership_count);
        for _ in 0..membership_count {
            let list = lists[rng.below(lists.len() as u64) as usize];
            if !memberships.contains(&list) {
                memberships.push(list);
            }
        }
        contact.lists = memberships.into_boxed_slice();
        if rng.chance(0.02) {
            contact.deleted_at = updated;
            contact.lists = Box::new([]);
        }
        account.contacts.insert(contact);
    }

    let campaign_count = rng.range(2, 3) as usize;
    let owner = account.info.owner_email().to_owned();
    for (n, name) in CAMPAIGN_NAMES.iter().take(campaign_count).enumerate() {
        let created =
            now - rng.below(300) as i64 * MS_PER_DAY - rng.below(MS_PER_DAY as u64) as i64;
        let ids = [account.rng.uuid(), account.rng.uuid(), account.rng.uuid()];
        let activity = NewActivity {
            from_name: account.info.organization_name.clone(),
            from_email: owner.clone(),
            reply_to_email: owner.clone(),
            subject: (*name).to_owned(),
            preheader: None,
            html_content: format!("<html><body>[[trackingImage]]<h1>{name}</h1></body></html>"),
            physical_address: None,
        };
        let index = account
            .campaigns
            .create(ids, (*name).to_owned(), activity, created);
        if n == 0 {
            let primary = account.campaigns.campaigns[index as usize].primary as usize;
            let activity = &mut account.campaigns.activities[primary];
            activity.contact_list_ids = lists
                .iter()
                .take(1)
                .map(|&l| account.lists.id_of(l))
                .collect();
            activity.status = Status::Done;
            // Sent a day after it was created (and long enough ago for all its tracking
            // events to be visible), to the recipients of its list.
            let latest = now - crate::reports::ENGAGEMENT_WINDOW_MS * 2;
            let sent_at = (created + MS_PER_DAY).min(latest);
            account.campaigns.campaigns[index as usize].created_at = created.min(sent_at);
            account.record_send(primary as u32, sent_at);
        }
    }
    account.segments = segments::seeded(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(seed: u64, contacts: usize) -> Account {
        let mut account = Account::new("acct".into(), 9, 1, 0);
        seed_account(&mut account, 1, contacts, seed, 1_800_000_000_000);
        account
    }

    #[test]
    fn the_same_seed_gives_identical_contacts() {
        let (a, b) = (seeded(3, 200), seeded(3, 200));
        assert_eq!(a.contacts.rows, b.contacts.rows);
        let c = seeded(4, 200);
        assert_ne!(a.contacts.rows, c.contacts.rows);
    }

    #[test]
    fn seeded_emails_are_unique_and_times_lie_in_the_past_two_years() {
        let account = seeded(1, 1_000);
        let now = 1_800_000_000;
        let mut emails: Vec<_> = account
            .contacts
            .rows
            .iter()
            .map(|c| c.email.clone())
            .collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), 1_000);
        for c in &account.contacts.rows {
            assert!(c.created_at >= now - TWO_YEARS_SECS && c.created_at <= now);
            assert!(c.updated_at >= c.created_at && c.updated_at <= now);
        }
        assert!(account.contacts.rows.iter().any(Contact::is_deleted));
        assert!(
            account
                .contacts
                .rows
                .iter()
                .any(|c| c.permission == Permission::Unsubscribed)
        );
        assert!((3..=5).contains(&account.lists.rows.len()));
        assert!((2..=3).contains(&account.campaigns.campaigns.len()));
    }
}
