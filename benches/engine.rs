//! The conversation engine's own cost with the `rules` brain: time per callee turn (target p99
//! ≤ 1 ms) and the memory of 1,000 conversations in flight at once (target ≤ 200 MB).
//!
//! Run: `cargo bench --bench engine` (env `BENCH_CONVERSATIONS`, default 2000 for the timing).
//! Memory is the growth of this process's resident set (Linux `/proc/self/status`) while the
//! conversations are held, each started and one turn in.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{TimeZone, Utc};
use serde_json::json;
use voxd::clock::ManualClock;
use voxd::conversation::{
    brain::{rules::RulesBrain, Brain},
    script::Script,
    text::Conversation,
    tools::{RecordingSms, Tools},
};

fn script(name: &str) -> Arc<Script> {
    let path = format!("{}/examples/scripts/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    Arc::new(Script::from_yaml_or_json(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("BENCH_CONVERSATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let brain: Arc<dyn Brain> = Arc::new(RulesBrain);
    let tools = Arc::new(Tools::new(false, Arc::new(RecordingSms::default())));
    let scripts = [
        (
            script("buyer-follow-up"),
            vec![
                "Yes, sure",
                "What's the price guide?",
                "We loved it, great kitchen",
                "Yes please",
                "About 1200000",
            ],
        ),
        (
            script("appraisal-booking"),
            vec!["Yes please", "No, Monday would be better", "Monday", "That's all"],
        ),
        (
            script("receptionist"),
            vec![
                "What are your office hours?",
                "Where is your office?",
                "I'd like an appraisal",
                "Jane, 0412 345 678",
            ],
        ),
    ];
    let vars = json!({"contact": {"first_name": "John", "email": "john@example.com", "phone_number": "+61429069971"}});

    let mut turns: Vec<Duration> = Vec::with_capacity(n * 5);
    let mut starts: Vec<Duration> = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let (script, lines) = &scripts[i % scripts.len()];
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()));
        let t = Instant::now();
        let mut c = Conversation::start(
            script.clone(),
            brain.clone(),
            tools.clone(),
            clock.clone(),
            vars.clone(),
            Default::default(),
        )
        .await;
        starts.push(t.elapsed());
        for line in lines {
            if c.is_over() {
                break;
            }
            clock.advance(chrono::Duration::seconds(3));
            let t = Instant::now();
            c.hear(line).await;
            turns.push(t.elapsed());
        }
        std::hint::black_box(c.analyse().await);
    }
    let total = started.elapsed();
    turns.sort();
    starts.sort();
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];

    let before = rss_kib();
    let mut held = Vec::with_capacity(1000);
    for i in 0..1000 {
        let (script, lines) = &scripts[i % scripts.len()];
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()));
        let mut c = Conversation::start(
            script.clone(),
            brain.clone(),
            tools.clone(),
            clock,
            vars.clone(),
            Default::default(),
        )
        .await;
        c.hear(lines[0]).await;
        held.push(c);
    }
    let after = rss_kib();
    let grown_mb = after.saturating_sub(before) as f64 / 1024.0;

    println!("\nconversation engine, rules brain: {n} conversations over the 3 example scripts ({} callee turns) in {:.2} s\n", turns.len(), total.as_secs_f64());
    println!("| measure | p50 | p99 | max | target |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| callee turn (hear → decide → move → speak) | {:.1} µs | {:.1} µs | {:.1} µs | p99 ≤ 1000 µs |",
        micros(pct(&turns, 0.5)),
        micros(pct(&turns, 0.99)),
        micros(*turns.last().unwrap())
    );
    println!(
        "| conversation start (to first line) | {:.1} µs | {:.1} µs | {:.1} µs | |",
        micros(pct(&starts, 0.5)),
        micros(pct(&starts, 0.99)),
        micros(*starts.last().unwrap())
    );
    println!(
        "\n1,000 conversations in flight: resident memory grew {grown_mb:.1} MB ({:.1} KB each; target ≤ 200 MB)",
        grown_mb * 1024.0 / 1000.0
    );
    std::hint::black_box(held);
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
