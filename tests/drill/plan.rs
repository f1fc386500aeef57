//! The drill's commands, drawn from a seed: what each one is, which earlier commands it
//! depends on, and (in `model.rs`) what the account must look like once all are applied.
//!
//! Every command's effect is computable from the plan alone:
//! - each new contact has its own e-mail address; a follow-up upsert published right after
//!   it (same ordering key, no waiting) sets a field nothing else sets, so the two commute;
//! - updates, gets, renames, schedules and campaign gets depend on every earlier command
//!   about the same thing and are published only once those have their final results
//!   (ordering across daemon restarts is not promised: docs/messages.md, Ordering), so they
//!   apply in plan order;
//! - bad inputs have effects nobody can mistake: rejected, dead-lettered, no API effect.

/// A small xorshift64* generator: the drill needs reproducible draws, not good ones.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Broken messages, one kind after the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// A body that is not JSON (its id only in `message_id`).
    Json,
    /// `content_type: text/plain`.
    ContentType,
    UnknownType,
    /// `contact.upsert` with an address that is not one.
    Email,
    /// `contact.update` naming no contact.
    MissingTarget,
    /// `campaign.schedule` for a time long gone.
    PastSchedule,
    /// `contact.upsert` with a custom field the account does not have (found out through
    /// the API, so it is rejected by the handler, not by the decoder).
    UnknownField,
}

const BAD_KINDS: [Bad; 7] = [
    Bad::Json,
    Bad::ContentType,
    Bad::UnknownType,
    Bad::Email,
    Bad::MissingTarget,
    Bad::PastSchedule,
    Bad::UnknownField,
];

/// What one drill command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `contact.upsert` of a new address: names, maybe a list (the bulk path) and a custom
    /// field value (by the field's name).
    Upsert {
        contact: usize,
        bulk: bool,
        field: Option<(usize, String)>,
    },
    /// `contact.upsert` of the same address right behind it: the company only.
    FollowUp {
        contact: usize,
    },
    /// `contact.update` by e-mail or by id: the job title, maybe a custom field value.
    Update {
        contact: usize,
        by_id: bool,
        job_title: String,
        field: Option<(usize, String)>,
    },
    GetContact {
        contact: usize,
        by_id: bool,
    },
    FieldCreate {
        field: usize,
    },
    FieldRename {
        field: usize,
        label: String,
    },
    CampaignCreate {
        campaign: usize,
    },
    CampaignSchedule {
        campaign: usize,
    },
    CampaignGet {
        campaign: usize,
    },
    Bad(Bad),
}

impl Action {
    /// The command type on the wire (bad inputs: what they pretend to be).
    pub fn command_type(&self) -> &'static str {
        match self {
            Action::Upsert { .. } | Action::FollowUp { .. } => "contact.upsert",
            Action::Update { .. } => "contact.update",
            Action::GetContact { .. } => "contact.get",
            Action::FieldCreate { .. } => "custom_field.create",
            Action::FieldRename { .. } => "custom_field.update",
            Action::CampaignCreate { .. } => "campaign.create",
            Action::CampaignSchedule { .. } => "campaign.schedule",
            Action::CampaignGet { .. } => "campaign.get",
            Action::Bad(Bad::Json | Bad::ContentType) => "contact.upsert",
            Action::Bad(Bad::UnknownType) => "contact.merge",
            Action::Bad(Bad::Email | Bad::UnknownField) => "contact.upsert",
            Action::Bad(Bad::MissingTarget) => "contact.update",
            Action::Bad(Bad::PastSchedule) => "campaign.schedule",
        }
    }

    pub fn is_bad(&self) -> bool {
        matches!(self, Action::Bad(_))
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub action: Action,
    /// Plan indexes that must have their final results before this one is published.
    pub deps: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct ContactPlan {
    pub email: String,
    pub created_by: usize,
    pub bulk: bool,
}

#[derive(Debug, Clone)]
pub struct FieldPlan {
    pub label: String,
    /// The field's `name`: its first label lower-cased, blanks as `_`; kept on renames.
    pub name: String,
    pub created_by: usize,
}

#[derive(Debug, Clone)]
pub struct CampaignPlan {
    pub name: String,
    pub created_by: usize,
    /// Minutes after the drill's schedule base (each campaign its own time).
    pub minute: u32,
    pub scheduled_by: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub contacts: Vec<ContactPlan>,
    pub fields: Vec<FieldPlan>,
    pub campaigns: Vec<CampaignPlan>,
}

/// The sandbox keeps at most 100 live custom fields per account.
const MAX_FIELDS: usize = 40;

/// Earlier commands about one thing, by plan index.
#[derive(Default)]
struct Touches {
    contacts: Vec<Vec<usize>>,
    fields: Vec<Vec<usize>>,
    campaigns: Vec<Vec<usize>>,
}

impl Plan {
    /// `n` commands drawn from `seed`.
    pub fn generate(seed: u64, n: usize) -> Plan {
        let mut rng = Rng::new(seed);
        let mut plan = Plan::default();
        let mut touches = Touches::default();
        let mut bad = 0;
        while plan.steps.len() < n {
            let index = plan.steps.len();
            let roll = rng.below(100);
            let action = if index == 0 || (roll < 4 && plan.fields.len() < MAX_FIELDS) {
                plan.new_field(index)
            } else if roll < 7 && !plan.fields.is_empty() {
                let field = rng.below(plan.fields.len());
                Action::FieldRename {
                    field,
                    label: format!("Drill F{field} r{index}"),
                }
            } else if roll < 13 {
                plan.new_campaign(index)
            } else if roll < 17 && plan.campaigns.iter().any(|c| c.scheduled_by.is_none()) {
                let open: Vec<usize> = (0..plan.campaigns.len())
                    .filter(|c| plan.campaigns[*c].scheduled_by.is_none())
                    .collect();
                let campaign = open[rng.below(open.len())];
                plan.campaigns[campaign].scheduled_by = Some(index);
                Action::CampaignSchedule { campaign }
            } else if roll < 20 && !plan.campaigns.is_empty() {
                Action::CampaignGet {
                    campaign: rng.below(plan.campaigns.len()),
                }
            } else if roll < 27 {
                bad += 1;
                Action::Bad(BAD_KINDS[(bad - 1) % BAD_KINDS.len()])
            } else if roll < 35 && !plan.contacts.is_empty() {
                let contact = rng.below(plan.contacts.len());
                Action::GetContact {
                    contact,
                    by_id: !plan.contacts[contact].bulk && rng.percent(30),
                }
            } else if roll < 51 && !plan.contacts.is_empty() {
                let contact = rng.below(plan.contacts.len());
                Action::Update {
                    contact,
                    by_id: !plan.contacts[contact].bulk && rng.percent(30),
                    job_title: format!("J{index}"),
                    field: plan.field_value(&mut rng, index, 40),
                }
            } else {
                let bulk = rng.percent(35);
                plan.contacts.push(ContactPlan {
                    email: format!("d{seed}-{index}@drill.example"),
                    created_by: index,
                    bulk,
                });
                Action::Upsert {
                    contact: plan.contacts.len() - 1,
                    bulk,
                    field: plan.field_value(&mut rng, index, 40),
                }
            };
            plan.push(&mut touches, action.clone());
            if let Action::Upsert { contact, .. } = action
                && plan.steps.len() < n
                && rng.percent(20)
            {
                plan.push(&mut touches, Action::FollowUp { contact });
            }
        }
        plan
    }

    fn new_field(&mut self, index: usize) -> Action {
        let field = self.fields.len();
        self.fields.push(FieldPlan {
            label: format!("Drill F{field}"),
            name: format!("drill_f{field}"),
            created_by: index,
        });
        Action::FieldCreate { field }
    }

    fn new_campaign(&mut self, index: usize) -> Action {
        let campaign = self.campaigns.len();
        self.campaigns.push(CampaignPlan {
            name: format!("Drill campaign {campaign}"),
            created_by: index,
            minute: campaign as u32,
            scheduled_by: None,
        });
        Action::CampaignCreate { campaign }
    }

    /// Sometimes a value for some existing custom field.
    fn field_value(&self, rng: &mut Rng, index: usize, percent: usize) -> Option<(usize, String)> {
        if self.fields.is_empty() || !rng.percent(percent) {
            return None;
        }
        Some((rng.below(self.fields.len()), format!("v{index}")))
    }

    /// Appends a step with its dependencies and records what it touches.
    fn push(&mut self, touches: &mut Touches, action: Action) {
        let index = self.steps.len();
        let grow = |lists: &mut Vec<Vec<usize>>, at: usize| {
            if lists.len() <= at {
                lists.resize(at + 1, Vec::new());
            }
        };
        grow(&mut touches.contacts, self.contacts.len());
        grow(&mut touches.fields, self.fields.len());
        grow(&mut touches.campaigns, self.campaigns.len());
        let field_dep = |field: &Option<(usize, String)>, plan: &Plan| {
            field.as_ref().map(|(f, _)| plan.fields[*f].created_by)
        };
        let deps: Vec<usize> = match &action {
            Action::Upsert { field, .. } => field_dep(field, self).into_iter().collect(),
            Action::FollowUp { .. } | Action::Bad(_) => Vec::new(),
            Action::Update { contact, field, .. } => {
                let mut deps = touches.contacts[*contact].clone();
                deps.extend(field_dep(field, self));
                deps
            }
            Action::GetContact { contact, .. } => touches.contacts[*contact].clone(),
            Action::FieldCreate { .. } | Action::CampaignCreate { .. } => Vec::new(),
            Action::FieldRename { field, .. } => touches.fields[*field].clone(),
            Action::CampaignSchedule { campaign } | Action::CampaignGet { campaign } => {
                touches.campaigns[*campaign].clone()
            }
        };
        match &action {
            Action::Upsert { contact, .. }
            | Action::FollowUp { contact }
            | Action::Update { contact, .. }
            | Action::GetContact { contact, .. } => touches.contacts[*contact].push(index),
            Action::FieldCreate { field } | Action::FieldRename { field, .. } => {
                touches.fields[*field].push(index)
            }
            Action::CampaignCreate { campaign }
            | Action::CampaignSchedule { campaign }
            | Action::CampaignGet { campaign } => touches.campaigns[*campaign].push(index),
            Action::Bad(_) => {}
        }
        self.steps.push(Step {
            id: format!("drill-{index:05}"),
            action,
            deps,
        });
    }
}
