//! `GET /contacts` paging and filters: completeness under concurrent updates and creates,
//! relative next links carrying the filters, `updated_after`/`updated_before`, status,
//! e-mail and list filters, `include_count`.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Env;

/// Follows `_links.next.href` to the end; returns every page's contacts.
async fn all_pages(env: &Env, first: &str, mut between: impl AsyncFnMut(usize)) -> Vec<Value> {
    let mut out = Vec::new();
    let mut href = first.to_owned();
    let mut pages = 0;
    loop {
        let r = env.get(&href).await;
        assert_eq!(r.status, 200, "{href}: {}", r.text);
        out.extend(
            r.body["contacts"]
                .as_array()
                .expect("contacts")
                .iter()
                .cloned(),
        );
        pages += 1;
        match r.body["_links"]["next"]["href"].as_str() {
            Some(next) => {
                assert!(next.starts_with("/v3/contacts?cursor="), "{next}");
                href = next.to_owned();
            }
            None => {
                assert_eq!(
                    r.body["_links"],
                    json!({}),
                    "the last page has empty _links"
                );
                break;
            }
        }
        between(pages).await;
    }
    out
}

fn id_of(c: &Value) -> String {
    c["contact_id"].as_str().expect("contact_id").to_owned()
}

#[tokio::test]
async fn paging_returns_every_contact_exactly_once_while_contacts_change_between_pages() {
    let env = Env::start().await;
    env.admin.seed(&env.account, 1_000, 7).expect("seeded");
    let before: Vec<String> = env
        .admin
        .snapshot(&env.account)
        .expect("snapshot")
        .contacts
        .iter()
        .map(id_of)
        .collect();
    let mut created = Vec::new();
    let seen = all_pages(&env, "/contacts?status=all&limit=37", async |page| {
        // Touch contacts on both sides of the cursor and add new ones.
        for offset in [page * 3, page * 37 + 5, 990 - page] {
            let id = &before[offset % before.len()];
            let c = env.get(&format!("/contacts/{id}")).await.body;
            let r = env
                .put(
                    &format!("/contacts/{id}"),
                    json!({"email_address": {"address": c["email_address"]["address"]},
                           "first_name": format!("Edited {page}"), "update_source": "Account"}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        created.push(env.contact(&format!("new{page}@example.com")).await);
    })
    .await;
    let ids: Vec<String> = seen.iter().map(id_of).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no contact is returned twice");
    for id in before.iter().chain(&created) {
        assert!(unique.contains(id), "{id} was missed");
    }
    assert_eq!(ids.len(), before.len() + created.len());
}

#[tokio::test]
async fn next_links_are_relative_and_carry_every_filter() {
    let env = Env::start().await;
    let list = env.list("L").await;
    for i in 0..5 {
        let r = env
            .post(
                "/contacts",
                json!({"email_address": {"address": format!("m{i}@example.com")},
                       "create_source": "Account", "list_memberships": [list]}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    env.contact("outsider@example.com").await;
    let first = env
        .get(&format!(
            "/contacts?lists={list}&include=list_memberships&limit=2&include_count=true"
        ))
        .await;
    assert_eq!(first.body["contacts_count"], 5);
    let contacts = all_pages(
        &env,
        &format!("/contacts?lists={list}&include=list_memberships&limit=2"),
        async |_| {},
    )
    .await;
    assert_eq!(contacts.len(), 5, "the list filter survives the cursor");
    assert!(
        contacts
            .iter()
            .all(|c| c["list_memberships"] == json!([list])),
        "so does include"
    );
    for bad in [
        "/contacts?limit=0",
        "/contacts?limit=501",
        "/contacts?cursor=%%%",
        "/contacts?status=bogus",
        "/contacts?updated_after=yesterday",
    ] {
        assert_eq!(env.get(bad).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn updated_after_is_inclusive_and_updated_before_exclusive_on_the_sandbox_clock() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    env.admin
        .set_clock("2024-01-01T10:00:00Z".parse().expect("instant"));
    let a = env.contact("a@example.com").await;
    let b = env.contact("b@example.com").await;
    env.admin.advance_clock(Duration::from_secs(10));
    let r = env
        .put(
            &format!("/contacts/{b}"),
            json!({"email_address": {"address": "b@example.com"}, "update_source": "Account"}),
        )
        .await;
    assert_eq!(r.body["updated_at"], "2024-01-01T10:00:10Z");
    let c = env.contact("c@example.com").await;
    let query = |q: &str| {
        let path = format!("/contacts?{q}");
        let env = &env;
        async move {
            let mut got: Vec<String> = env.get(&path).await.body["contacts"]
                .as_array()
                .expect("contacts")
                .iter()
                .map(id_of)
                .collect();
            got.sort();
            got
        }
    };
    let mut bc = vec![b.clone(), c.clone()];
    bc.sort();
    assert_eq!(query("updated_after=2024-01-01T10:00:10Z").await, bc);
    assert_eq!(
        query("updated_after=2024-01-01T05:00:10-05:00").await,
        bc,
        "offsets are honoured"
    );
    assert_eq!(
        query("updated_after=2024-01-01T10:00:11Z").await,
        Vec::<String>::new()
    );
    assert_eq!(
        query("updated_before=2024-01-01T10:00:10Z").await,
        vec![a.clone()]
    );
    assert_eq!(query("created_after=2024-01-01T10:00:05Z").await, vec![c]);

    env.admin.advance_clock(Duration::from_secs(5));
    assert_eq!(env.delete(&format!("/contacts/{a}")).await.status, 204);
    assert_eq!(
        query("updated_after=2024-01-01T10:00:15Z").await,
        Vec::<String>::new(),
        "deleted ones are hidden by default"
    );
    assert_eq!(
        query("updated_after=2024-01-01T10:00:15Z&status=all").await,
        vec![a.clone()],
        "deletion bumps updated_at"
    );
}

#[tokio::test]
async fn status_and_email_filters_select_the_right_contacts() {
    let env = Env::start().await;
    let gone = env.contact("Gone@Example.com").await;
    env.delete(&format!("/contacts/{gone}")).await;
    let unsub = env.contact("unsub@example.com").await;
    env.put(
        &format!("/contacts/{unsub}"),
        json!({"email_address": {"address": "unsub@example.com", "permission_to_send": "unsubscribed"}, "update_source": "Contact"}),
    )
    .await;
    let active = env.contact("active@example.com").await;
    let count = |path: &'static str| {
        let env = &env;
        async move {
            env.get(path).await.body["contacts"]
                .as_array()
                .expect("contacts")
                .len()
        }
    };
    assert_eq!(count("/contacts").await, 2);
    assert_eq!(count("/contacts?status=all").await, 3);
    assert_eq!(count("/contacts?status=deleted").await, 1);
    assert_eq!(count("/contacts?status=unsubscribed").await, 1);
    assert_eq!(count("/contacts?status=active").await, 1);
    assert_eq!(count("/contacts?status=active,deleted").await, 2);
    assert_eq!(
        count("/contacts?email=gone@example.com").await,
        0,
        "deleted: hidden without status"
    );
    assert_eq!(
        count("/contacts?email=gone@example.com&status=all").await,
        1
    );
    let r = env.get("/contacts?email=ACTIVE@example.com").await;
    assert_eq!(r.body["contacts"][0]["contact_id"], active.as_str());
}
