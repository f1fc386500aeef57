//! Email campaign reporting (the `/reports/...` operations): per campaign activity, the
//! recipients it was sent to and the tracking events that followed (opens, clicks, bounces,
//! opt-outs, forwards, spam reports). A send generates them deterministically (seeded from
//! the activity id) for the recipients of the activity's lists; every aggregate the API
//! serves is computed from these per-contact events, so the stats, summaries and tracking
//! reports always agree. Events carry a time and become visible once the sandbox clock has
//! reached it (opens and clicks trickle in over the hours after a send).

mod events;
pub(crate) mod handlers;
mod render;
mod view;

pub use events::TrackingEvent;
pub(crate) use events::add_events;
pub use view::ActivityReport;
pub(crate) use view::activity_reports;

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::clock::Millis;
use super::contacts::model::ContactStore;
use super::lists::Lists;
use super::rng::SplitMix64;

/// How long after a send generated opens, clicks, forwards and opt-outs may arrive.
pub(crate) const ENGAGEMENT_WINDOW_MS: Millis = 6 * 3_600_000;
/// Bounces arrive within this time after the send.
pub(crate) const BOUNCE_WINDOW_MS: Millis = 10 * 60_000;

/// The sandbox's default engagement rates (see README.md, "Campaign reports").
pub(crate) mod rates {
    /// Share of recipients whose copy bounces.
    pub(crate) const BOUNCE: f64 = 0.02;
    /// Share of delivered recipients who open (1–3 times).
    pub(crate) const OPEN: f64 = 0.40;
    /// Share of openers who click (1–2 clicks).
    pub(crate) const CLICK: f64 = 0.30;
    /// Share of openers who forward.
    pub(crate) const FORWARD: f64 = 0.02;
    /// Share of delivered recipients who opt out.
    pub(crate) const OPTOUT: f64 = 0.005;
    /// Share of delivered recipients who report the e-mail as spam.
    pub(crate) const ABUSE: f64 = 0.001;
}

/// Links used when an activity's HTML has none.
const DEFAULT_LINKS: [&str; 3] = [
    "https://www.example.com/",
    "https://www.example.com/offers",
    "https://www.example.com/blog",
];

/// Device types, as `device_type` renders them.
pub(crate) const DEVICES: [&str; 4] = ["computer", "mobile", "tablet", "other"];

/// Bounce codes (spec enum) in the order of `BOUNCE_WEIGHTS`.
pub(crate) const BOUNCE_CODES: [char; 7] = ['B', 'D', 'F', 'S', 'V', 'X', 'Z'];
const BOUNCE_WEIGHTS: [f64; 7] = [0.40, 0.20, 0.10, 0.05, 0.10, 0.10, 0.05];

/// Opt-out reasons given by generated opt-outs (index 0: none given).
pub(crate) const OPT_OUT_REASONS: [&str; 3] = [
    "",
    "No longer interested",
    "The content is not what I expected",
];

/// The kinds of per-contact events the sandbox keeps (and the admin API adds, by these
/// names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingKind {
    Open,
    Click,
    Bounce,
    Optout,
    Forward,
    Abuse,
}

impl TrackingKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TrackingKind::Open => "open",
            TrackingKind::Click => "click",
            TrackingKind::Bounce => "bounce",
            TrackingKind::Optout => "optout",
            TrackingKind::Forward => "forward",
            TrackingKind::Abuse => "abuse",
        }
    }
}

/// One tracked event. `detail` is the device index (opens, clicks), the bounce code index
/// (bounces) or the opt-out reason index (opt-outs); `link` the link index (clicks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Event {
    pub(crate) at: Millis,
    pub(crate) seq: u32,
    pub(crate) contact: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) link: u16,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) detail: u8,
}

/// Keeps zero `link`/`detail` out of the state file.
fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Event {
    /// The (time, sequence) key events are ordered and paged by.
    pub(crate) fn key(&self) -> (Millis, u32) {
        (self.at, self.seq)
    }
}

/// One recipient of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Send {
    pub(crate) contact: u32,
    pub(crate) at: Millis,
}

/// A tracked link of an activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Link {
    pub(crate) url_id: i64,
    pub(crate) url: String,
}

/// Everything tracked for one campaign activity. Every event list is sorted by `key()`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Tracking {
    /// When the activity was last sent.
    pub(crate) last_sent_at: Millis,
    pub(crate) links: Vec<Link>,
    /// In send order (append only).
    pub(crate) sends: Vec<Send>,
    pub(crate) opens: Vec<Event>,
    pub(crate) clicks: Vec<Event>,
    pub(crate) bounces: Vec<Event>,
    pub(crate) optouts: Vec<Event>,
    pub(crate) forwards: Vec<Event>,
    pub(crate) abuse: Vec<Event>,
    next_seq: u32,
}

/// Aggregate counts over the visible events of one activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) sends: u64,
    pub(crate) opens: u64,
    pub(crate) opens_all: u64,
    pub(crate) opens_by_device: [u64; 4],
    pub(crate) clicks: u64,
    pub(crate) clicks_all: u64,
    pub(crate) clicks_by_device: [u64; 4],
    pub(crate) forwards: u64,
    pub(crate) optouts: u64,
    pub(crate) abuse: u64,
    pub(crate) bounces: u64,
    pub(crate) bounces_by_code: [u64; 7],
}

impl Stats {
    /// `em_not_opened`: sends − opens − bounces, never negative.
    pub(crate) fn not_opened(&self) -> u64 {
        self.sends.saturating_sub(self.opens + self.bounces)
    }

    /// Recipients whose copy did not bounce.
    pub(crate) fn delivered(&self) -> u64 {
        self.sends.saturating_sub(self.bounces)
    }
}

/// Distinct contacts among events.
fn unique(events: &[Event]) -> u64 {
    events
        .iter()
        .map(|e| e.contact)
        .collect::<HashSet<_>>()
        .len() as u64
}

impl Tracking {
    pub(crate) fn events(&self, kind: TrackingKind) -> &[Event] {
        match kind {
            TrackingKind::Open => &self.opens,
            TrackingKind::Click => &self.clicks,
            TrackingKind::Bounce => &self.bounces,
            TrackingKind::Optout => &self.optouts,
            TrackingKind::Forward => &self.forwards,
            TrackingKind::Abuse => &self.abuse,
        }
    }

    fn events_mut(&mut self, kind: TrackingKind) -> &mut Vec<Event> {
        match kind {
            TrackingKind::Open => &mut self.opens,
            TrackingKind::Click => &mut self.clicks,
            TrackingKind::Bounce => &mut self.bounces,
            TrackingKind::Optout => &mut self.optouts,
            TrackingKind::Forward => &mut self.forwards,
            TrackingKind::Abuse => &mut self.abuse,
        }
    }

    /// The events of a kind whose time has come.
    pub(crate) fn visible(&self, kind: TrackingKind, now: Millis) -> &[Event] {
        let events = self.events(kind);
        &events[..events.partition_point(|e| e.at <= now)]
    }

    /// Appends an event without keeping its list sorted (`sort` restores the order).
    fn append(&mut self, kind: TrackingKind, contact: u32, at: Millis, link: u16, detail: u8) {
        let event = self.next_event(contact, at, link, detail);
        self.events_mut(kind).push(event);
    }

    /// A new event, numbered after the last one.
    fn next_event(&mut self, contact: u32, at: Millis, link: u16, detail: u8) -> Event {
        let event = Event {
            at,
            seq: self.next_seq,
            contact,
            link,
            detail,
        };
        self.next_seq += 1;
        event
    }

    /// Sorts every event list by key (after `append`s).
    fn sort(&mut self) {
        for kind in [
            TrackingKind::Open,
            TrackingKind::Click,
            TrackingKind::Bounce,
            TrackingKind::Optout,
            TrackingKind::Forward,
            TrackingKind::Abuse,
        ] {
            self.events_mut(kind).sort_unstable_by_key(Event::key);
        }
    }

    /// Adds an event, keeping its list sorted; returns it.
    pub(crate) fn push(
        &mut self,
        kind: TrackingKind,
        contact: u32,
        at: Millis,
        link: u16,
        detail: u8,
    ) -> Event {
        let event = self.next_event(contact, at, link, detail);
        let list = self.events_mut(kind);
        let position = list.partition_point(|e| e.key() <= event.key());
        list.insert(position, event);
        event
    }

    /// Contacts with a visible open or bounce (the did-not-opens report leaves them out).
    pub(crate) fn engaged(&self, now: Millis) -> HashSet<u32> {
        [TrackingKind::Open, TrackingKind::Bounce]
            .into_iter()
            .flat_map(|k| self.visible(k, now).iter().map(|e| e.contact))
            .collect()
    }

    /// True when this contact was sent the activity.
    pub(crate) fn was_sent(&self, contact: u32) -> bool {
        self.sends.iter().any(|s| s.contact == contact)
    }

    /// The aggregate counts as of `now`.
    pub(crate) fn stats(&self, now: Millis) -> Stats {
        let opens = self.visible(TrackingKind::Open, now);
        let clicks = self.visible(TrackingKind::Click, now);
        let bounces = self.visible(TrackingKind::Bounce, now);
        let mut stats = Stats {
            sends: self.sends.iter().filter(|s| s.at <= now).count() as u64,
            opens: unique(opens),
            opens_all: opens.len() as u64,
            clicks: unique(clicks),
            clicks_all: clicks.len() as u64,
            forwards: unique(self.visible(TrackingKind::Forward, now)),
            optouts: unique(self.visible(TrackingKind::Optout, now)),
            abuse: self.visible(TrackingKind::Abuse, now).len() as u64,
            bounces: unique(bounces),
            ..Stats::default()
        };
        for e in opens {
            stats.opens_by_device[usize::from(e.detail).min(3)] += 1;
        }
        for e in clicks {
            stats.clicks_by_device[usize::from(e.detail).min(3)] += 1;
        }
        let mut seen = HashSet::new();
        for e in bounces {
            if seen.insert(e.contact) {
                stats.bounces_by_code[usize::from(e.detail).min(6)] += 1;
            }
        }
        stats
    }

    /// Unique clickers per link as of `now`.
    pub(crate) fn link_clicks(&self, now: Millis) -> Vec<u64> {
        let mut sets = vec![HashSet::new(); self.links.len()];
        for e in self.visible(TrackingKind::Click, now) {
            if let Some(set) = sets.get_mut(usize::from(e.link)) {
                set.insert(e.contact);
            }
        }
        sets.into_iter().map(|s| s.len() as u64).collect()
    }
}

/// The tracking of every sent activity of one account, by activity index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Reports {
    pub(crate) by_activity: BTreeMap<u32, Tracking>,
}

/// The recipients of a send: live contacts with an e-mail address and an active permission
/// (explicit or implicit) that belong to at least one of the lists.
pub(crate) fn recipients(contacts: &ContactStore, lists: &Lists, list_ids: &[Uuid]) -> Vec<u32> {
    let wanted: Vec<u32> = list_ids.iter().filter_map(|id| lists.find(id)).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    contacts
        .rows
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            !c.is_deleted()
                && c.email.is_some()
                && c.permission.is_active()
                && c.lists.iter().any(|l| wanted.contains(l))
        })
        .map(|(i, _)| i as u32)
        .collect()
}

/// The distinct http(s) links of an HTML body (`href="…"`), in order of appearance.
pub(crate) fn html_links(html: &str) -> Vec<String> {
    let mut links: Vec<String> = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("href=") {
        let start = from + found + 5;
        from = start;
        let Some(quote) = html[start..].chars().next() else {
            break;
        };
        if quote != '"' && quote != '\'' {
            continue;
        }
        let rest = &html[start + 1..];
        let Some(end) = rest.find(quote) else {
            break;
        };
        let url = rest[..end].trim();
        if (url.starts_with("http://") || url.starts_with("https://"))
            && !links.iter().any(|l| l == url)
        {
            links.push(url.to_owned());
        }
        from = start + 1 + end;
    }
    links
}

/// A stable 64-bit seed from an activity id.
fn activity_seed(id: &Uuid) -> u64 {
    let n = id.as_u128();
    (n as u64) ^ ((n >> 64) as u64) ^ 0x7EAC_C0DE_0000_0000
}

fn weighted(rng: &mut SplitMix64, weights: &[f64]) -> usize {
    let mut u = rng.unit();
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

fn device(rng: &mut SplitMix64) -> u8 {
    weighted(rng, &[0.45, 0.40, 0.10, 0.05]) as u8
}

/// A delay in `0..window`, most of them early (opens cluster after a send).
fn early(rng: &mut SplitMix64, window: Millis) -> Millis {
    let u = rng.unit();
    (u * u * window as f64) as Millis
}

/// Records a send of activity `activity_id` at `sent_at` to `recipients` (those already sent
/// this activity are skipped) and generates their events from a generator seeded by the
/// activity id and the send's sequence, so the same state sends the same way.
pub(crate) fn record_send(
    tracking: &mut Tracking,
    activity_id: &Uuid,
    html: Option<&str>,
    sent_at: Millis,
    recipients: &[u32],
) {
    if tracking.links.is_empty() {
        let mut urls = html.map(html_links).unwrap_or_default();
        if urls.is_empty() {
            urls = DEFAULT_LINKS.iter().map(|s| (*s).to_owned()).collect();
        }
        urls.truncate(usize::from(u16::MAX));
        let base = 1_100_000_000_000 + (activity_seed(activity_id) % 800_000_000_000) as i64;
        tracking.links = urls
            .into_iter()
            .enumerate()
            .map(|(i, url)| Link {
                url_id: base + i as i64 * 7,
                url,
            })
            .collect();
    }
    tracking.last_sent_at = sent_at;
    let already: HashSet<u32> = tracking.sends.iter().map(|s| s.contact).collect();
    let mut rng = SplitMix64::new(activity_seed(activity_id) ^ (tracking.sends.len() as u64));
    let link_count = tracking.links.len() as u64;
    let engaged_from = sent_at + super::campaigns::SEND_DURATION_MS;
    for &contact in recipients {
        if already.contains(&contact) {
            continue;
        }
        tracking.sends.push(Send {
            contact,
            at: sent_at,
        });
        if rng.chance(rates::BOUNCE) {
            let code = weighted(&mut rng, &BOUNCE_WEIGHTS) as u8;
            let at = sent_at + early(&mut rng, BOUNCE_WINDOW_MS);
            tracking.append(TrackingKind::Bounce, contact, at, 0, code);
            continue;
        }
        let mut last = engaged_from;
        if rng.chance(rates::OPEN) {
            let first = engaged_from + early(&mut rng, ENGAGEMENT_WINDOW_MS);
            let opens = rng.range(1, 3);
            let mut at = first;
            for _ in 0..opens {
                tracking.append(TrackingKind::Open, contact, at, 0, device(&mut rng));
                at += rng.range(1_000, 3_600_000) as Millis;
            }
            last = first;
            if rng.chance(rates::CLICK) {
                let clicks = rng.range(1, 2);
                for _ in 0..clicks {
                    let link = rng.below(link_count) as u16;
                    let click_at = first + rng.range(1_000, 600_000) as Millis;
                    tracking.append(
                        TrackingKind::Click,
                        contact,
                        click_at,
                        link,
                        device(&mut rng),
                    );
                }
            }
            if rng.chance(rates::FORWARD) {
                let at = first + rng.range(1_000, 1_800_000) as Millis;
                tracking.append(TrackingKind::Forward, contact, at, 0, 0);
            }
        }
        if rng.chance(rates::OPTOUT) {
            let at = last + early(&mut rng, ENGAGEMENT_WINDOW_MS / 2) + 1_000;
            let reason = rng.below(OPT_OUT_REASONS.len() as u64) as u8;
            tracking.append(TrackingKind::Optout, contact, at, 0, reason);
        }
        if rng.chance(rates::ABUSE) {
            let at = last + early(&mut rng, ENGAGEMENT_WINDOW_MS / 2) + 1_000;
            tracking.append(TrackingKind::Abuse, contact, at, 0, 0);
        }
    }
    tracking.sort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_taken_from_href_attributes_once_each() {
        let html = r#"<a href="https://a.example/x">a</a> <A HREF='http://b.example/'>b</a>
            <a href="mailto:x@example.com">m</a> <a href="https://a.example/x">again</a>"#;
        assert_eq!(
            html_links(html),
            vec!["https://a.example/x", "http://b.example/"]
        );
    }

    #[test]
    fn the_same_send_generates_the_same_events_and_aggregates_match_them() {
        let id = Uuid::from_u128(42);
        let recipients: Vec<u32> = (0..5_000).collect();
        let mut a = Tracking::default();
        let mut b = Tracking::default();
        record_send(&mut a, &id, None, 1_000_000, &recipients);
        record_send(&mut b, &id, None, 1_000_000, &recipients);
        assert_eq!(a.opens, b.opens);
        assert_eq!(a.clicks, b.clicks);
        assert_eq!(a.bounces, b.bounces);
        assert_eq!(a.links.len(), DEFAULT_LINKS.len());
        for kind in [
            TrackingKind::Open,
            TrackingKind::Click,
            TrackingKind::Bounce,
        ] {
            let events = a.events(kind);
            assert!(!events.is_empty());
            assert!(events.windows(2).all(|w| w[0].key() < w[1].key()), "sorted");
        }
        let later = 1_000_000 + 2 * ENGAGEMENT_WINDOW_MS + 24 * 3_600_000;
        let stats = a.stats(later);
        assert_eq!(stats.sends, 5_000);
        assert!(stats.opens > 1_500 && stats.opens < 2_500, "{stats:?}");
        assert!(stats.clicks > 0 && stats.bounces > 0);
        assert_eq!(stats.opens_all, a.opens.len() as u64);
        assert_eq!(stats.opens_by_device.iter().sum::<u64>(), stats.opens_all);
        assert_eq!(stats.bounces_by_code.iter().sum::<u64>(), stats.bounces);
        // Nothing but the sends is visible before the engagement starts.
        let early = a.stats(1_000_000);
        assert_eq!((early.sends, early.opens, early.clicks), (5_000, 0, 0));
        // A second send of the same activity adds only new recipients.
        record_send(&mut a, &id, None, 2_000_000, &[1, 2, 5_000]);
        assert_eq!(a.sends.len(), 5_001);
    }

    #[test]
    fn tracking_round_trips_through_json_and_old_state_files_load() {
        let mut t = Tracking::default();
        record_send(
            &mut t,
            &Uuid::from_u128(7),
            None,
            5_000,
            &(0..300).collect::<Vec<_>>(),
        );
        let text = serde_json::to_string(&t).expect("serialises");
        let back: Tracking = serde_json::from_str(&text).expect("parses");
        assert_eq!(
            (back.sends, back.opens, back.clicks),
            (t.sends, t.opens, t.clicks)
        );
        assert_eq!(back.links, t.links);
        // A state file written before reports existed loads with none.
        let account = crate::state::Account::new("acct".into(), 1, 1, 0);
        let mut value = serde_json::to_value(&account).expect("serialises");
        value.as_object_mut().expect("an object").remove("reports");
        let old: crate::state::Account = serde_json::from_value(value).expect("parses");
        assert!(old.reports.by_activity.is_empty());
    }

    #[test]
    fn events_stay_sorted_when_added_out_of_order() {
        let mut t = Tracking::default();
        t.push(TrackingKind::Open, 1, 50, 0, 0);
        t.push(TrackingKind::Open, 2, 10, 0, 0);
        t.push(TrackingKind::Open, 3, 50, 0, 0);
        let keys: Vec<_> = t.opens.iter().map(Event::key).collect();
        assert_eq!(keys, vec![(10, 1), (50, 0), (50, 2)]);
        assert_eq!(t.visible(TrackingKind::Open, 49).len(), 1);
    }
}
