//! Turns a planned step into the message the drill publishes. Ids the API assigned (contact,
//! custom field, campaign) come from the final results of the steps this one depends on.

use chrono::{DateTime, Utc};
use ctct_sync::command::outcome::{CommandResult, Outcome};
use lapin::BasicProperties;
use serde_json::{Value, json};

use crate::plan::{Action, Bad, Plan};
use crate::support::daemon::json_properties;

/// What every message of the run shares.
pub struct Context {
    pub list_id: String,
    /// The account's confirmed sender address (campaigns need one).
    pub owner: String,
    /// Campaign `k` is scheduled `k` minutes after this (whole minutes, weeks ahead).
    pub schedule_base: DateTime<Utc>,
}

impl Context {
    pub fn scheduled_at(&self, minute: u32) -> DateTime<Utc> {
        self.schedule_base + chrono::Duration::minutes(i64::from(minute))
    }
}

pub struct Outgoing {
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

/// The message for plan step `index`, or why it cannot be built (a step it needs an id
/// from did not succeed).
pub fn message(
    plan: &Plan,
    index: usize,
    cx: &Context,
    result_of: impl Fn(usize) -> Option<CommandResult>,
) -> Result<Outgoing, String> {
    let step = &plan.steps[index];
    let id = step.id.as_str();
    let data_of = |of: usize, key: &str| -> Result<String, String> {
        let result = result_of(of).ok_or_else(|| format!("{} has no result", plan.steps[of].id))?;
        if result.outcome != Outcome::Succeeded {
            return Err(format!("{} did not succeed", plan.steps[of].id));
        }
        result
            .data
            .as_ref()
            .and_then(|d| d[key].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{} has no {key}", plan.steps[of].id))
    };
    let contact_ref = |contact: usize, by_id: bool| -> Result<Value, String> {
        let c = &plan.contacts[contact];
        Ok(if by_id {
            json!({"contact_id": data_of(c.created_by, "contact_id")?})
        } else {
            json!({"email": c.email})
        })
    };
    let with_field = |mut data: Value, field: &Option<(usize, String)>| {
        if let Some((f, value)) = field {
            data["custom_fields"] = json!({ plan.fields[*f].name.clone(): value });
        }
        data
    };
    let data = match &step.action {
        Action::Upsert {
            contact,
            bulk,
            field,
        } => {
            let mut data = json!({"email": plan.contacts[*contact].email,
                "first_name": format!("F{index}"), "last_name": format!("L{index}")});
            if *bulk {
                data["list_ids"] = json!([cx.list_id]);
            }
            with_field(data, field)
        }
        Action::FollowUp { contact } => {
            json!({"email": plan.contacts[*contact].email, "company_name": format!("Co{index}")})
        }
        Action::Update {
            contact,
            by_id,
            job_title,
            field,
        } => {
            let mut data = contact_ref(*contact, *by_id)?;
            data["job_title"] = json!(job_title);
            with_field(data, field)
        }
        Action::GetContact { contact, by_id } => contact_ref(*contact, *by_id)?,
        Action::FieldCreate { field } => {
            json!({"label": plan.fields[*field].label, "type": "string"})
        }
        Action::FieldRename { field, label } => json!({
            "custom_field_id": data_of(plan.fields[*field].created_by, "custom_field_id")?,
            "label": label,
        }),
        Action::CampaignCreate { campaign } => {
            let name = &plan.campaigns[*campaign].name;
            json!({"name": name, "subject": format!("Subject of {name}"),
                "from_name": "Drill", "from_email": cx.owner, "reply_to_email": cx.owner,
                "html_content": format!("<html><body>[[trackingImage]]<p>{name}</p></body></html>"),
                "list_ids": [cx.list_id]})
        }
        Action::CampaignSchedule { campaign } => {
            let c = &plan.campaigns[*campaign];
            json!({"campaign_id": data_of(c.created_by, "campaign_id")?,
                "scheduled_at": cx.scheduled_at(c.minute).to_rfc3339()})
        }
        Action::CampaignGet { campaign } => json!({
            "campaign_id": data_of(plan.campaigns[*campaign].created_by, "campaign_id")?,
        }),
        Action::Bad(bad) => return Ok(bad_message(*bad, id, index)),
    };
    let body = json!({"id": id, "type": step.action.command_type(), "data": data});
    Ok(Outgoing {
        body: serde_json::to_vec(&body).expect("JSON"),
        properties: properties(id),
    })
}

fn properties(id: &str) -> BasicProperties {
    json_properties()
        .with_message_id(id.into())
        .with_correlation_id(id.into())
}

fn bad_message(bad: Bad, id: &str, index: usize) -> Outgoing {
    let envelope = |command_type: &str, data: Value| {
        serde_json::to_vec(&json!({"id": id, "type": command_type, "data": data})).expect("JSON")
    };
    let (body, properties) = match bad {
        Bad::Json => (
            format!(r#"{{"id":"{id}","type":"contact.upsert","data":{{"email":"#).into_bytes(),
            properties(id),
        ),
        Bad::ContentType => (
            envelope(
                "contact.upsert",
                json!({"email": format!("ct{index}@drill.example")}),
            ),
            BasicProperties::default()
                .with_content_type("text/plain".into())
                .with_delivery_mode(2)
                .with_message_id(id.into()),
        ),
        Bad::UnknownType => (envelope("contact.merge", json!({})), properties(id)),
        Bad::Email => (
            envelope("contact.upsert", json!({"email": "not an address"})),
            properties(id),
        ),
        Bad::MissingTarget => (
            envelope("contact.update", json!({"first_name": "Nobody"})),
            properties(id),
        ),
        Bad::PastSchedule => (
            envelope(
                "campaign.schedule",
                json!({"campaign_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f",
                    "scheduled_at": "2001-01-01T00:00:00Z"}),
            ),
            properties(id),
        ),
        Bad::UnknownField => (
            envelope(
                "contact.upsert",
                json!({"email": format!("bad{index}@drill.example"),
                    "custom_fields": {"no_such_drill_field": "x"}}),
            ),
            properties(id),
        ),
    };
    Outgoing { body, properties }
}
