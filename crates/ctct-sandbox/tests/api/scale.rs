//! Scale checks, ignored by default (run in release, see the crate's README.md):
//! `cargo test --release -p ctct-sandbox --test api scale -- --ignored --nocapture --test-threads 1`.

use std::time::{Duration, Instant};

use ctct_sandbox::SandboxOptions;
use serde_json::json;

use super::harness::Env;

/// Peak resident set size of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[tokio::test]
#[ignore = "scale check: run in release with --ignored"]
async fn a_million_contacts_seed_in_seconds_and_stay_under_one_gib() {
    let started = Instant::now();
    let env = Env::start_with(SandboxOptions {
        seed_contacts: 1_000_000,
        ..SandboxOptions::for_tests()
    })
    .await;
    let elapsed = started.elapsed();
    let rss = peak_rss_mib().unwrap_or_default();
    println!("seeded 1,000,000 contacts in {elapsed:?}; peak RSS {rss} MiB");
    assert_eq!(
        env.admin.contact_count(&env.account, true).expect("count"),
        1_000_000
    );
    let page = env
        .get("/contacts?limit=500&include=custom_fields,list_memberships")
        .await;
    assert_eq!(
        page.body["contacts"].as_array().expect("contacts").len(),
        500
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert!(rss < 1024, "{rss} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale check: run in release with --ignored"]
async fn the_sandbox_sustains_benchmark_read_and_write_rates() {
    let env = Env::start_with(SandboxOptions {
        seed_contacts: 200_000,
        ..SandboxOptions::for_tests()
    })
    .await;
    let started = Instant::now();
    let mut read = 0usize;
    let mut href = "/contacts?limit=500&include=custom_fields,list_memberships".to_owned();
    loop {
        let response = env
            .http
            .get(env.url(&href))
            .bearer_auth(&env.token)
            .send()
            .await
            .expect("answers");
        let body: serde_json::Value = response.json().await.expect("json");
        read += body["contacts"].as_array().expect("contacts").len();
        match body["_links"]["next"]["href"].as_str() {
            Some(next) => href = next.to_owned(),
            None => break,
        }
    }
    let reads_per_sec = read as f64 / started.elapsed().as_secs_f64();
    println!("read {read} contacts at {reads_per_sec:.0}/s");

    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let http = env.http.clone();
        let url = env.url("/contacts");
        let token = env.token.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..1_000 {
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"create_source": "Account",
                                  "email_address": {"address": format!("w{worker}-{i}@bench.example")}}))
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(r.status(), 201);
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer finished");
    }
    let writes_per_sec = 8_000.0 / started.elapsed().as_secs_f64();
    println!("wrote 8000 contacts at {writes_per_sec:.0}/s");
    assert!(reads_per_sec > 50_000.0, "{reads_per_sec:.0} reads/s");
    assert!(writes_per_sec > 2_000.0, "{writes_per_sec:.0} writes/s");
}
