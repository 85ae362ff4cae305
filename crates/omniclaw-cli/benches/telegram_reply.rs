//! Telegram update received → first reply chunk sent, through the whole
//! `omniclaw gateway` process: long poll, the durable inbox, the chat's
//! lane, the agent (session store, prompt, an instant provider double),
//! the answer formatted and sent. The Bot API double stamps each
//! `sendMessage` as it arrives; the clock starts when the update is queued
//! for the waiting long poll. Prints p50 / p99 / max over 200 messages;
//! the goal is p50 ≤ 20 ms.
//! Run: `cargo bench -p omniclaw-cli --bench telegram_reply`.

use std::time::{Duration, Instant};

use omniclaw_agent::double::{Double, Reply};
use omniclaw_tests::botapi::{assistant_bot, BotApiDouble};
use omniclaw_tests::{GatewayProc, Home};

const MESSAGES: usize = 200;
const WARMUP: usize = 10;
const GOAL: Duration = Duration::from_millis(20);
const TOKEN: &str = "555000999:AAHbench-token-for-the-reply-bench_ab";
const USER: i64 = 7300;

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let double = rt.block_on(Double::start()).expect("provider double");
    double.set_recording(false);
    double.set_default(Reply::text("Pong."));
    let api = BotApiDouble::start();
    api.add_bot(TOKEN, "bench_bot");
    let home = Home::new();
    let port = home.setup_on_free_port("main");
    assistant_bot(
        &home,
        port,
        &api,
        TOKEN,
        &double.base_url("openai-completions"),
        USER,
        "allowlist",
        "",
        "logging: { level: \"warn\" },",
    );
    let _gw = GatewayProc::start(&home, &["--profile", "main", "gateway"]);

    let mut samples = Vec::with_capacity(MESSAGES);
    for i in 0..WARMUP + MESSAGES {
        // Each message waits for the previous answer: one chat is one lane.
        let start = Instant::now();
        let id = api.push_message(USER, &format!("ping {i}"));
        let deadline = start + Duration::from_secs(30);
        let reply = loop {
            if let Some(s) = api.replies_to(id).into_iter().next() {
                break s;
            }
            assert!(Instant::now() < deadline, "no reply to message {i}");
            std::thread::sleep(Duration::from_micros(200));
        };
        assert_eq!(reply.text, "Pong.");
        if i >= WARMUP {
            samples.push(reply.at.duration_since(start));
        }
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let (p50, p99, max) = (pick(0.50), pick(0.99), samples[samples.len() - 1]);
    println!(
        "telegram update → first reply chunk sent, {MESSAGES} messages, instant provider double: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (goal p50 ≤ {} ms)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        GOAL.as_millis()
    );
    if p50 > GOAL {
        println!("GOAL MISSED");
        std::process::exit(1);
    }
}
