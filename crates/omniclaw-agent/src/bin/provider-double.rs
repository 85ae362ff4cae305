//! The model-provider double as its own process, for trying a gateway by
//! hand and for benchmarks that point another program (the real OpenClaw
//! gateway) at it: prints its address, then answers every chat request with
//! the instant default reply until stopped.
//!
//! `provider-double [REPLY]` — REPLY replaces the default text.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let double = omniclaw_agent::double::Double::start().await?;
    double.set_recording(false);
    if let Some(text) = std::env::args().nth(1) {
        double.set_default(omniclaw_agent::double::Reply::text(text));
    }
    println!("{}", double.addr());
    // Stopped by a signal; nothing to clean up.
    std::future::pending::<()>().await;
    Ok(())
}
