//! The state-changing and reading admin operations of `SandboxAdmin`: faults, logs, accounts
//! and tokens, seeding, reset, snapshots, activity completion, account e-mails, state file.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{AccountSnapshot, AccountSummary, InstalledFault, SandboxAdmin, StateSummary};
use crate::activities::{self, Shape};
use crate::campaigns::{activity_json as campaign_activity_json, campaign_json};
use crate::contacts::render::{ContactJson, Include};
use crate::custom_fields::field_value;
use crate::errors::SandboxError;
use crate::faults::FaultSpec;
use crate::lists::list_value;
use crate::logs::{Effect, LoggedRequest};
use crate::oauth::scope;
use crate::oauth::token::issue;
use crate::state::{Account, Cx, World, lock};
use crate::{persist, seed};

/// Tokens minted directly by the admin API (no OAuth round trip).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
}

pub(super) fn account_index(world: &World, account: &str) -> Result<usize, SandboxError> {
    world
        .account_index(account)
        .ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))
}

/// Creates a new empty account (deterministic id from the world's generator).
pub(crate) fn new_account(world: &mut World, now: i64) -> usize {
    let number = world.accounts.len() + 1;
    let id = format!("a{}", world.id_rng.base36(13));
    let seed = world.id_rng.next_u64();
    world.accounts.push(Account::new(id, seed, number, now));
    world.accounts.len() - 1
}

impl SandboxAdmin {
    /// Installs a fault; returns its id.
    pub fn inject_fault(&self, spec: FaultSpec) -> Result<u64, SandboxError> {
        spec.validate().map_err(SandboxError::InvalidAdminRequest)?;
        Ok(lock(&self.shared.faults).install(spec, self.shared.seed))
    }

    pub fn faults(&self) -> Vec<InstalledFault> {
        lock(&self.shared.faults)
            .list()
            .into_iter()
            .map(|(id, spec, remaining)| InstalledFault {
                id,
                remaining,
                spec,
            })
            .collect()
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every logged request (oldest first).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.requests_since(0, usize::MAX)
    }

    /// Logged requests with `seq > since`, at most `limit`.
    pub fn requests_since(&self, since: u64, limit: usize) -> Vec<LoggedRequest> {
        lock(&self.shared.requests).since(since, limit)
    }

    pub fn clear_request_log(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Every recorded state change (oldest first).
    pub fn effects(&self) -> Vec<Effect> {
        self.effects_since(0, usize::MAX)
    }

    pub fn effects_since(&self, since: u64, limit: usize) -> Vec<Effect> {
        self.shared.world().effects.since(since, limit)
    }

    /// The effects a command (`X-Ctct-Command-Id`) caused.
    pub fn effects_for_command(&self, command_id: &str) -> Vec<Effect> {
        self.shared
            .world()
            .effects
            .matching(|e| e.command_id.as_deref() == Some(command_id))
    }

    /// Revokes every token family of an account (401 on its access tokens, `invalid_grant`
    /// on its refresh tokens); returns how many families were live.
    pub fn revoke_tokens(&self, account: &str) -> Result<usize, SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        let revoked = world.auth.revoke_account(index);
        for family in &revoked {
            world.effects.push(
                now,
                account,
                "token.family_revoked",
                Some(format!("family-{family}")),
                None,
            );
        }
        Ok(revoked.len())
    }

    /// A fresh grant (all scopes, offline_access) for re-authorisation: its refresh token.
    pub fn issue_refresh_token(&self, account: &str) -> Result<String, SandboxError> {
        let tokens = self.issue_tokens(account, &scope::names(scope::ALL).join(" "))?;
        tokens
            .refresh_token
            .ok_or_else(|| SandboxError::InvalidAdminRequest("no refresh token".into()))
    }

    /// A fresh grant with exactly these scopes (space separated), for the primary client.
    pub fn issue_tokens(&self, account: &str, scopes: &str) -> Result<IssuedTokens, SandboxError> {
        let bits = scope::parse(scopes)
            .map_err(|bad| SandboxError::InvalidAdminRequest(format!("unknown scope {bad}")))?;
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        let client_id = world
            .auth
            .clients
            .first()
            .map(|c| c.client_id.clone())
            .unwrap_or_default();
        let family = world.auth.new_family(index, &client_id, bits, false);
        let body = issue(&self.shared, &mut world, family, now);
        Ok(IssuedTokens {
            access_token: body["access_token"].as_str().unwrap_or_default().to_owned(),
            refresh_token: body["refresh_token"].as_str().map(str::to_owned),
            expires_in: body["expires_in"].as_i64().unwrap_or_default(),
            scope: body["scope"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Adds an empty account (with its confirmed owner e-mail); returns its id and a ready
    /// refresh token for it.
    pub fn add_account(&self) -> (String, String) {
        let now = self.shared.now_ms();
        let id = {
            let mut world = self.shared.world();
            let index = new_account(&mut world, now);
            world.accounts[index].id.clone()
        };
        let refresh = self.issue_refresh_token(&id).unwrap_or_default();
        (id, refresh)
    }

    /// Replaces an account's data with `contacts` seeded contacts (deterministic in `seed`
    /// and the sandbox time).
    pub fn seed(
        &self,
        account: &str,
        contacts: usize,
        seed_value: u64,
    ) -> Result<(), SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        seed::seed_account(
            &mut world.accounts[index],
            index + 1,
            contacts,
            seed_value,
            now,
        );
        Ok(())
    }

    /// Back to the start state: the first account re-seeded as at start, the others emptied;
    /// faults, logs, effects, limits and counters cleared. Clients, accounts and tokens stay.
    pub fn reset(&self) {
        let now = self.shared.now_ms();
        {
            let mut world = self.shared.world();
            for (index, account) in world.accounts.iter_mut().enumerate() {
                let contacts = if index == 0 {
                    self.shared.initial_contacts
                } else {
                    0
                };
                seed::seed_account(account, index + 1, contacts, self.shared.seed, now);
            }
            world.effects.clear();
            world.rows_per_sec = crate::state::DEFAULT_ROWS_PER_SEC;
        }
        self.clear_faults();
        self.clear_request_log();
        lock(&self.shared.limiter).reset();
        self.shared
            .token_requests
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Finishes every queued bulk activity and every executing campaign send now.
    pub fn complete_activities_now(&self) {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let count = world.accounts.len();
        for index in 0..count {
            world.with_account(index, now, None, |account, cx: &mut Cx<'_>| {
                activities::progress(account, cx, true);
                account.progress_campaigns(cx, true);
                account.touch();
            });
        }
    }

    /// Adds an (unconfirmed) account e-mail; returns its `email_id`.
    pub fn add_account_email(&self, account: &str, email: &str) -> Result<i64, SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        world
            .with_account(index, now, None, |acc, cx| {
                crate::account::add_email(&mut acc.info, &acc.id.clone(), cx, email)
            })
            .ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))?
            .map_err(|e| {
                SandboxError::InvalidAdminRequest(format!("cannot add {email}: {}", e.key()))
            })
    }

    /// The reports of every sent campaign activity of `account` (not removed), rendered as
    /// the `/reports` operations render them at this moment.
    pub fn campaign_reports(
        &self,
        account: &str,
    ) -> Result<Vec<crate::reports::ActivityReport>, SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        world
            .with_account(index, now, None, |acc, _| {
                crate::reports::activity_reports(acc, now)
            })
            .ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))
    }

    /// Adds a campaign that was sent at `sent_at` to the first `recipients` recipients of
    /// every live list of `account` (all of them with `None`), with its tracking events
    /// generated as for a send through the API; returns the campaign's id, its primary
    /// activity's and how many recipients it was sent to. For making sent campaigns at scale without a send's round trips (the
    /// benchmarks); `sent_at` may lie in the past, and events dated after the sandbox's
    /// now show up as its clock reaches them.
    pub fn add_sent_campaign(
        &self,
        account: &str,
        name: &str,
        sent_at: chrono::DateTime<chrono::Utc>,
        recipients: Option<usize>,
    ) -> Result<(Uuid, Uuid, usize), SandboxError> {
        let now = self.shared.now_ms();
        let sent_at = sent_at.timestamp_millis();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        world
            .with_account(index, now, None, |acc, _| {
                if acc.campaigns.name_taken(name, None) {
                    return Err(SandboxError::InvalidAdminRequest(format!(
                        "a campaign named {name} exists"
                    )));
                }
                let owner = acc.info.owner_email().to_owned();
                let ids = [acc.rng.uuid(), acc.rng.uuid(), acc.rng.uuid()];
                let activity = crate::campaigns::NewActivity {
                    from_name: acc.info.organization_name.clone(),
                    from_email: owner.clone(),
                    reply_to_email: owner,
                    subject: name.to_owned(),
                    preheader: None,
                    html_content: format!(
                        "<html><body>[[trackingImage]]<h1>{name}</h1></body></html>"
                    ),
                    physical_address: None,
                };
                let created = sent_at - crate::clock::MS_PER_DAY;
                let campaign = acc
                    .campaigns
                    .create(ids, name.to_owned(), activity, created);
                acc.campaigns.campaigns[campaign as usize].updated_at = sent_at;
                let primary = acc.campaigns.campaigns[campaign as usize].primary;
                let lists: Vec<Uuid> = (0..acc.lists.rows.len() as u32)
                    .filter(|&l| acc.lists.is_live(l))
                    .map(|l| acc.lists.id_of(l))
                    .collect();
                let activity = &mut acc.campaigns.activities[primary as usize];
                activity.contact_list_ids = lists;
                activity.status = crate::campaigns::Status::Done;
                let mut to = crate::reports::recipients(
                    &acc.contacts,
                    &acc.lists,
                    &activity.contact_list_ids,
                );
                if let Some(limit) = recipients {
                    to.truncate(limit);
                }
                let tracking = acc.reports.by_activity.entry(primary).or_default();
                crate::reports::record_send(
                    tracking,
                    &activity.id,
                    activity.html_content.as_deref(),
                    sent_at,
                    &to,
                );
                acc.touch();
                Ok((ids[0], ids[1], to.len()))
            })
            .ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))?
    }

    /// Adds tracking events to a sent campaign activity of `account` (all or none); returns
    /// how many were added. Events dated now or earlier show in the reports at once.
    pub fn add_tracking_events(
        &self,
        account: &str,
        campaign_activity_id: Uuid,
        events: &[crate::reports::TrackingEvent],
    ) -> Result<usize, SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        world
            .with_account(index, now, None, |acc, _| {
                crate::reports::add_events(acc, &campaign_activity_id, events, now)
            })
            .ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))?
            .map_err(SandboxError::InvalidAdminRequest)
    }

    /// Confirms an account e-mail (as the owner clicking the confirmation link would).
    pub fn confirm_account_email(&self, account: &str, email: &str) -> Result<(), SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        if world.accounts[index].info.confirm(email, now) {
            Ok(())
        } else {
            Err(SandboxError::InvalidAdminRequest(format!(
                "{email} is not an e-mail address of account {account}"
            )))
        }
    }

    /// One contact as `GET /contacts/{id}` with every include renders it.
    pub fn contact(&self, account: &str, contact_id: Uuid) -> Result<Option<Value>, SandboxError> {
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        let now = self.shared.now_ms();
        Ok(world
            .with_account(index, now, None, |acc, _| {
                acc.contacts
                    .find(&contact_id)
                    .map(|i| contact_value(acc, i))
            })
            .flatten())
    }

    /// Number of contacts, deleted ones included or not.
    pub fn contact_count(
        &self,
        account: &str,
        include_deleted: bool,
    ) -> Result<usize, SandboxError> {
        let world = self.shared.world();
        let index = account_index(&world, account)?;
        Ok(world.accounts[index]
            .contacts
            .rows
            .iter()
            .filter(|c| include_deleted || !c.is_deleted())
            .count())
    }

    /// Everything in one account, rendered as the API renders it.
    pub fn snapshot(&self, account: &str) -> Result<AccountSnapshot, SandboxError> {
        let now = self.shared.now_ms();
        let mut world = self.shared.world();
        let index = account_index(&world, account)?;
        world
            .with_account(index, now, None, |acc, cx| {
                snapshot(acc, cx.now, cx.rows_per_sec)
            })
            .ok_or_else(|| SandboxError::UnknownAccount(account.to_owned()))
    }

    /// Counts per account, the clock and the limits.
    pub fn summary(&self) -> StateSummary {
        let accounts = self
            .shared
            .world()
            .accounts
            .iter()
            .map(|a| AccountSummary {
                account_id: a.id.clone(),
                contacts: a.contacts.len(),
                deleted_contacts: a.contacts.rows.iter().filter(|c| c.is_deleted()).count(),
                custom_fields: a.fields.live().count(),
                lists: a.lists.live_count(),
                campaigns: a.campaigns.campaigns.len(),
                activities: a.activities.rows.len(),
                queued_activities: a
                    .activities
                    .rows
                    .iter()
                    .filter(|x| x.completed_at.is_none())
                    .count(),
            })
            .collect();
        StateSummary {
            now: self.now(),
            clock_frozen: self.shared.clock.is_frozen(),
            limits: self.limits(),
            token_requests: self.token_requests_count(),
            accounts,
        }
    }

    /// Writes the `--state` file now.
    pub fn save_state(&self) -> Result<(), SandboxError> {
        let path = self
            .shared
            .state_file
            .clone()
            .ok_or(SandboxError::NoStateFile)?;
        let world = self.shared.world();
        persist::save(&path, &world, self.shared.clock.offset_ms())
    }
}

fn contact_value(account: &Account, index: u32) -> Value {
    serde_json::to_value(ContactJson {
        contact: account.contacts.get(index),
        lists: &account.lists,
        fields: &account.fields,
        include: Include::ALL,
    })
    .unwrap_or_default()
}

fn snapshot(account: &Account, now: i64, rate: u32) -> AccountSnapshot {
    let all_includes: Vec<String> = [
        "physical_address_in_footer",
        "permalink_url",
        "html_content",
        "document_properties",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    AccountSnapshot {
        account_id: account.id.clone(),
        contacts: (0..account.contacts.len() as u32)
            .map(|i| contact_value(account, i))
            .collect(),
        custom_fields: account.fields.live().map(|(_, f)| field_value(f)).collect(),
        lists: account.lists.rows.iter().map(list_value).collect(),
        campaigns: account
            .campaigns
            .campaigns
            .iter()
            .map(|c| campaign_json(&account.campaigns, c, true))
            .collect(),
        campaign_activities: account
            .campaigns
            .activities
            .iter()
            .map(|a| campaign_activity_json(&account.campaigns, a, &all_includes))
            .collect(),
        activities: account
            .activities
            .rows
            .iter()
            .map(|a| activities::activity_json(a, now, rate, Shape::Read))
            .collect(),
        account_emails: account
            .info
            .emails
            .iter()
            .map(crate::account::email_json)
            .collect(),
    }
}
