//! The account the plan must leave behind, folded from the plan in its order, and the
//! comparison with the sandbox's snapshot. Ids the API assigned come from the results.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ctct_sandbox::AccountSnapshot;
use ctct_sync::command::outcome::CommandResult;
use serde_json::Value;

use crate::build::Context;
use crate::plan::{Action, Plan};

/// The parts of a contact the drill writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactView {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub job_title: Option<String>,
    pub company_name: Option<String>,
    /// custom_field_id → value.
    pub fields: BTreeMap<String, String>,
    pub lists: BTreeSet<String>,
    pub deleted: bool,
}

impl ContactView {
    /// Reads a contact as the API renders it (the snapshot, or a `contact.get` result).
    pub fn of(contact: &Value) -> Self {
        let text = |key: &str| contact[key].as_str().map(str::to_owned);
        let items = |key: &str| contact[key].as_array().cloned().unwrap_or_default();
        ContactView {
            first_name: text("first_name"),
            last_name: text("last_name"),
            job_title: text("job_title"),
            company_name: text("company_name"),
            fields: items("custom_fields")
                .iter()
                .filter_map(|f| {
                    Some((
                        f["custom_field_id"].as_str()?.to_owned(),
                        f["value"].as_str()?.to_owned(),
                    ))
                })
                .collect(),
            lists: items("list_memberships")
                .iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect(),
            deleted: contact.get("deleted_at").is_some_and(|d| !d.is_null()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignView {
    pub subject: String,
    pub lists: Vec<String>,
    /// The primary e-mail activity's status: `DRAFT` or `SCHEDULED`.
    pub status: String,
}

/// What the account must hold, plus what each `contact.get` must have read.
#[derive(Debug, Default)]
pub struct Expected {
    /// e-mail (lower case) → contact.
    pub contacts: BTreeMap<String, ContactView>,
    /// custom_field_id → label.
    pub fields: BTreeMap<String, String>,
    /// name → campaign.
    pub campaigns: BTreeMap<String, CampaignView>,
    /// plan index of a `contact.get` → the contact as it was then.
    pub reads: HashMap<usize, ContactView>,
    /// Ids the fold needed and no result gave (a failed create).
    pub unknown: Vec<String>,
}

/// Folds the plan's valid steps, in plan order.
pub fn expected(plan: &Plan, cx: &Context, results: &HashMap<usize, CommandResult>) -> Expected {
    let mut out = Expected::default();
    let id_from = |step: usize, key: &str, out: &mut Expected| -> String {
        match results
            .get(&step)
            .and_then(|r| r.data.as_ref())
            .and_then(|d| d[key].as_str())
        {
            Some(id) => id.to_owned(),
            None => {
                out.unknown.push(format!("{} {key}", plan.steps[step].id));
                format!("<{key} of {}>", plan.steps[step].id)
            }
        }
    };
    for (index, step) in plan.steps.iter().enumerate() {
        let contact_key = |c: usize| plan.contacts[c].email.to_lowercase();
        match &step.action {
            Action::Upsert {
                contact,
                bulk,
                field,
            } => {
                let field = field.as_ref().map(|(f, v)| {
                    (
                        id_from(plan.fields[*f].created_by, "custom_field_id", &mut out),
                        v.clone(),
                    )
                });
                let view = out.contacts.entry(contact_key(*contact)).or_default();
                view.first_name = Some(format!("F{index}"));
                view.last_name = Some(format!("L{index}"));
                if *bulk {
                    view.lists.insert(cx.list_id.clone());
                }
                view.fields.extend(field);
            }
            Action::FollowUp { contact } => {
                out.contacts
                    .entry(contact_key(*contact))
                    .or_default()
                    .company_name = Some(format!("Co{index}"));
            }
            Action::Update {
                contact,
                job_title,
                field,
                ..
            } => {
                let field = field.as_ref().map(|(f, v)| {
                    (
                        id_from(plan.fields[*f].created_by, "custom_field_id", &mut out),
                        v.clone(),
                    )
                });
                let view = out.contacts.entry(contact_key(*contact)).or_default();
                view.job_title = Some(job_title.clone());
                view.fields.extend(field);
            }
            Action::GetContact { contact, .. } => {
                let view = out
                    .contacts
                    .get(&contact_key(*contact))
                    .cloned()
                    .unwrap_or_default();
                out.reads.insert(index, view);
            }
            Action::FieldCreate { field } => {
                let id = id_from(index, "custom_field_id", &mut out);
                out.fields.insert(id, plan.fields[*field].label.clone());
            }
            Action::FieldRename { field, label } => {
                let id = id_from(plan.fields[*field].created_by, "custom_field_id", &mut out);
                out.fields.insert(id, label.clone());
            }
            Action::CampaignCreate { campaign } => {
                let name = plan.campaigns[*campaign].name.clone();
                out.campaigns.insert(
                    name.clone(),
                    CampaignView {
                        subject: format!("Subject of {name}"),
                        lists: vec![cx.list_id.clone()],
                        status: "DRAFT".into(),
                    },
                );
            }
            Action::CampaignSchedule { campaign } => {
                if let Some(view) = out.campaigns.get_mut(&plan.campaigns[*campaign].name) {
                    view.status = "SCHEDULED".into();
                }
            }
            Action::CampaignGet { .. } | Action::Bad(_) => {}
        }
    }
    out
}

/// The snapshot's contacts, custom fields and campaigns in the shape of [`Expected`].
pub struct Actual {
    pub contacts: BTreeMap<String, ContactView>,
    pub fields: BTreeMap<String, String>,
    pub campaigns: BTreeMap<String, CampaignView>,
    /// name → primary activity id (to read its schedule).
    pub primary_activities: BTreeMap<String, String>,
}

pub fn actual(snapshot: &AccountSnapshot) -> Actual {
    let contacts = snapshot
        .contacts
        .iter()
        .map(|c| {
            let email = c["email_address"]["address"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            (email, ContactView::of(c))
        })
        .collect();
    let fields = snapshot
        .custom_fields
        .iter()
        .filter_map(|f| {
            Some((
                f["custom_field_id"].as_str()?.to_owned(),
                f["label"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let activities: HashMap<&str, &Value> = snapshot
        .campaign_activities
        .iter()
        .filter_map(|a| Some((a["campaign_activity_id"].as_str()?, a)))
        .collect();
    let mut campaigns = BTreeMap::new();
    let mut primary_activities = BTreeMap::new();
    for campaign in &snapshot.campaigns {
        let name = campaign["name"].as_str().unwrap_or_default().to_owned();
        let primary = campaign["campaign_activities"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["role"] == "primary_email")
            .and_then(|a| a["campaign_activity_id"].as_str())
            .unwrap_or_default();
        let activity = activities.get(primary).copied().unwrap_or(&Value::Null);
        campaigns.insert(
            name.clone(),
            CampaignView {
                subject: activity["subject"].as_str().unwrap_or_default().to_owned(),
                lists: activity["contact_list_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect(),
                status: activity["current_status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            },
        );
        primary_activities.insert(name, primary.to_owned());
    }
    Actual {
        contacts,
        fields,
        campaigns,
        primary_activities,
    }
}

/// Every difference between what the plan implies and what the sandbox holds.
pub fn differences(expected: &Expected, actual: &Actual) -> Vec<String> {
    let mut out: Vec<String> = expected
        .unknown
        .iter()
        .map(|u| format!("no result gave {u}"))
        .collect();
    compare(&mut out, "contact", &expected.contacts, &actual.contacts);
    compare(&mut out, "custom field", &expected.fields, &actual.fields);
    compare(&mut out, "campaign", &expected.campaigns, &actual.campaigns);
    out
}

fn compare<V: PartialEq + std::fmt::Debug>(
    out: &mut Vec<String>,
    what: &str,
    expected: &BTreeMap<String, V>,
    actual: &BTreeMap<String, V>,
) {
    for (key, want) in expected {
        match actual.get(key) {
            None => out.push(format!("{what} {key} is missing")),
            Some(got) if got != want => {
                out.push(format!("{what} {key}: expected {want:?}, found {got:?}"))
            }
            Some(_) => {}
        }
    }
    for key in actual.keys().filter(|k| !expected.contains_key(*k)) {
        out.push(format!("{what} {key} should not exist"));
    }
}
