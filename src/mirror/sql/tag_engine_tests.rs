//! Tags, contacts' taggings and segments on both engines: listings reconciled (a deleted tag
//! leaves with its taggings, a deleted segment leaves), taggings following the contact's
//! current tags through a first (held) full pass and later pages, and segment criteria kept
//! until they are read again.

use super::engine_tests::{at, begin, contact, engines, mark, succeeded};
use super::{MirrorDb, PageEnd};
use crate::api::model::{Segment, Tag};
use crate::mirror::{ContactRow, Mode, Resource};

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn tag(id: &str, name: &str, count: u64) -> Tag {
    serde_json::from_value(serde_json::json!({
        "tag_id": id, "name": name, "tag_source": "Shop", "contacts_count": count,
        "created_at": "2026-01-01T00:00:00Z"
    }))
    .expect("a tag")
}

fn segment(id: u32, name: &str, edited: &str, criteria: Option<&str>) -> Segment {
    let mut json = serde_json::json!({
        "segment_id": id, "name": name, "created_at": "2026-01-01T00:00:00Z",
        "edited_at": edited
    });
    if let Some(criteria) = criteria {
        json["segment_criteria"] = criteria.into();
    }
    serde_json::from_value(json).expect("a segment")
}

fn tagged(id: &str, tags: &[&str]) -> ContactRow {
    ContactRow {
        tag_ids: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
        ..contact(id)
    }
}

async fn list_tags(db: &MirrorDb, day: u32, tags: Vec<Tag>) -> Outcome {
    let (run_id, lease, pass) = begin(db, Resource::Tags, Mode::Full, at(day, 0)).await?;
    db.write_catalog(mark(run_id, &lease, at(day, 0)), pass, tags, PageEnd::Last)
        .await?;
    db.finish_run(run_id, succeeded(at(day, 0)), lease).await?;
    Ok(())
}

async fn list_segments(db: &MirrorDb, day: u32, segments: Vec<Segment>) -> Outcome {
    let (run_id, lease, pass) = begin(db, Resource::Segments, Mode::Full, at(day, 1)).await?;
    db.write_catalog(
        mark(run_id, &lease, at(day, 1)),
        pass,
        segments,
        PageEnd::Last,
    )
    .await?;
    db.finish_run(run_id, succeeded(at(day, 1)), lease).await?;
    Ok(())
}

async fn write_contacts(db: &MirrorDb, day: u32, mode: Mode, rows: Vec<ContactRow>) -> Outcome {
    let (run_id, lease, pass) = begin(db, Resource::Contacts, mode, at(day, 2)).await?;
    db.write_contacts(
        mark(run_id, &lease, at(day, 2)),
        pass,
        rows,
        1,
        PageEnd::Last,
    )
    .await?;
    db.finish_run(run_id, succeeded(at(day, 2)), lease).await?;
    Ok(())
}

const TAGGINGS: &str = "SELECT contact_id || ':' || tag_id FROM contact_taggings
                        WHERE account = 'acme' ORDER BY contact_id, tag_id";

#[tokio::test]
async fn taggings_follow_each_contacts_current_tags_and_a_deleted_tag_leaves_with_them() -> Outcome
{
    for engine in engines("tags").await {
        let (db, name) = (&engine.db, engine.name);
        list_tags(db, 1, vec![tag("t1", "VIP", 2), tag("t2", "Late", 1)]).await?;
        // A first full pass: held, then moved in with its last page.
        write_contacts(
            db,
            2,
            Mode::Full,
            vec![
                tagged("c1", &["t1", "t2"]),
                tagged("c2", &["t1"]),
                contact("c3"),
            ],
        )
        .await?;
        assert_eq!(
            engine.texts(TAGGINGS).await,
            ["c1:t1", "c1:t2", "c2:t1"],
            "{name}: the first pass's taggings"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT tag_id || '=' || name || '=' || coalesce(tag_source, '') || '='
                         || contacts_count || '=' || live_contacts
                     FROM contact_tags JOIN tag_sizes USING (account, tag_id, name)
                     ORDER BY tag_id"
                )
                .await,
            ["t1=VIP=Shop=2=2", "t2=Late=Shop=1=1"],
            "{name}"
        );

        // Later pages: c1 untagged from t1, c2 from everything; c3's source said nothing
        // (its taggings stay), and a page that does not say keeps c1's too.
        write_contacts(
            db,
            3,
            Mode::Incremental,
            vec![
                tagged("c1", &["t2"]),
                tagged("c2", &[]),
                tagged("c3", &["t2"]),
            ],
        )
        .await?;
        assert_eq!(
            engine.texts(TAGGINGS).await,
            ["c1:t2", "c3:t2"],
            "{name}: untagged contacts lose their rows"
        );
        write_contacts(
            db,
            4,
            Mode::Full,
            vec![contact("c1"), contact("c2"), contact("c3")],
        )
        .await?;
        assert_eq!(
            engine.texts(TAGGINGS).await,
            ["c1:t2", "c3:t2"],
            "{name}: a source without taggings keeps them"
        );

        // t2 deleted in Constant Contact: the next listing drops it and its taggings.
        list_tags(db, 5, vec![tag("t1", "VIP", 0)]).await?;
        assert_eq!(
            engine.texts("SELECT tag_id FROM contact_tags").await,
            ["t1"],
            "{name}"
        );
        assert!(engine.texts(TAGGINGS).await.is_empty(), "{name}");

        // A contact gone from the account takes its taggings along.
        write_contacts(db, 6, Mode::Incremental, vec![tagged("c1", &["t1"])]).await?;
        write_contacts(db, 7, Mode::Full, vec![tagged("c2", &["t1"])]).await?;
        assert_eq!(engine.texts(TAGGINGS).await, ["c2:t1"], "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn segments_keep_their_criteria_until_edited_and_a_deleted_segment_leaves() -> Outcome {
    for engine in engines("segments").await {
        let (db, name) = (&engine.db, engine.name);
        let rules = r#"{"version":"1.0.0","criteria":{"type":"and","group":[]}}"#;
        list_segments(
            db,
            1,
            vec![
                segment(11, "Re-engage", "2026-01-01T10:00:00Z", Some(rules)),
                segment(12, "Buyers", "2026-01-01T11:00:00Z", None),
            ],
        )
        .await?;
        let stamps = db.segment_criteria_stamps("acme").await?;
        assert_eq!(stamps.get(&11), Some(&Some(at(1, 10))), "{name}");
        assert_eq!(stamps.get(&12), Some(&None), "{name}: criteria never read");

        // Listed again without criteria (the listing never carries them): kept.
        list_segments(
            db,
            2,
            vec![segment(
                11,
                "Re-engage (renamed)",
                "2026-01-02T09:00:00Z",
                None,
            )],
        )
        .await?;
        let criteria = if engine.is_postgres() {
            "SELECT name || '|' || segment_criteria::text FROM segments"
        } else {
            "SELECT name || '|' || segment_criteria FROM segments"
        };
        let rows = engine.texts(criteria).await;
        assert_eq!(
            rows.len(),
            1,
            "{name}: segment 12 deleted, so no longer listed"
        );
        let (segment_name, kept) = rows[0].split_once('|').expect("name|criteria");
        assert_eq!(segment_name, "Re-engage (renamed)", "{name}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(kept)?,
            serde_json::from_str::<serde_json::Value>(rules)?,
            "{name}"
        );
        assert_eq!(
            db.segment_criteria_stamps("acme").await?.get(&11),
            Some(&Some(at(1, 10))),
            "{name}: still the edit the criteria were read at"
        );
    }
    Ok(())
}
