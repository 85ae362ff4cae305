//! The model-provider double as its own process, for trying a gateway by
//! hand and for benchmarks that point another program (the real OpenClaw
//! gateway) at it: prints its address, then answers every chat request with
//! the instant default reply until stopped.
//!
//! `provider-double [REPLY] [--call TOOL ARGS_JSON]...` — REPLY replaces the
//! default text; each `--call` queues one answer, before the default ones,
//! that calls TOOL with ARGS_JSON (to show a tool call or an approval).

use omniclaw_agent::double::{Double, Reply};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let double = Double::start().await?;
    double.set_recording(false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--call" {
            let (Some(tool), Some(json)) = (args.next(), args.next()) else {
                eprintln!("provider-double: --call wants a tool name and its arguments as JSON");
                std::process::exit(2);
            };
            let arguments = serde_json::from_str(&json).unwrap_or_else(|e| {
                eprintln!("provider-double: the arguments of --call {tool} are not JSON: {e}");
                std::process::exit(2);
            });
            double.push(Reply::tool_call(&tool, arguments));
        } else {
            double.set_default(Reply::text(arg));
        }
    }
    println!("{}", double.addr());
    // Stopped by a signal; nothing to clean up.
    std::future::pending::<()>().await;
    Ok(())
}
