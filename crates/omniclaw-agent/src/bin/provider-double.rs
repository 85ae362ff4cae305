//! The model-provider double as its own process, for trying a gateway by
//! hand and for benchmarks that point another program (the real OpenClaw
//! gateway) at it: prints its address, then answers every chat request with
//! the default reply until stopped.
//!
//! `provider-double [REPLY] [--chunk-bytes N --delay-ms MS] [--call TOOL
//! ARGS_JSON]...` — REPLY replaces the default text; `--chunk-bytes` and
//! `--delay-ms` stream each answer's body in chunks of N bytes, MS
//! milliseconds apart (instant and whole by default); each `--call` queues
//! one answer, before the default ones, that calls TOOL with ARGS_JSON (to
//! show a tool call or an approval).

use std::time::Duration;

use omniclaw_agent::double::{Double, Reply};

fn main() -> std::io::Result<()> {
    let mut text = None;
    let mut chunk = None;
    let mut delay = Duration::ZERO;
    let mut calls = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> u64 {
            match args.next().and_then(|v| v.parse().ok()) {
                Some(n) => n,
                None => {
                    eprintln!("provider-double: {name} needs a whole number");
                    std::process::exit(2);
                }
            }
        };
        match arg.as_str() {
            "--chunk-bytes" => chunk = Some(number("--chunk-bytes")),
            "--delay-ms" => delay = Duration::from_millis(number("--delay-ms")),
            "--call" => {
                let (Some(tool), Some(json)) = (args.next(), args.next()) else {
                    eprintln!(
                        "provider-double: --call needs a tool name and its arguments as JSON"
                    );
                    std::process::exit(2);
                };
                let arguments = serde_json::from_str(&json).unwrap_or_else(|e| {
                    eprintln!("provider-double: the arguments of --call {tool} are not JSON: {e}");
                    std::process::exit(2);
                });
                calls.push(Reply::tool_call(&tool, arguments));
            }
            _ => text = Some(arg),
        }
    }
    let mut reply = Reply::text(text.unwrap_or_else(|| "ok".into()));
    if let Some(bytes) = chunk {
        reply = reply.chunked(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
    reply = reply.delayed(delay);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let double = Double::start().await?;
            double.set_recording(false);
            double.set_default(reply);
            for call in calls {
                double.push(call);
            }
            println!("{}", double.addr());
            // Stopped by a signal; nothing to clean up.
            std::future::pending::<()>().await;
            Ok(())
        })
}
