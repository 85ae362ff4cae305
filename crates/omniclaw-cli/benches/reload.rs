//! Config saved → change applied, on the hot path: a running gateway (all
//! real parts: OS file watcher, debounce, validation, classification, hot
//! apply) and 100 edits of `logging.level`, each saved the way editors do
//! (temp file renamed over the config). Prints p50 / p99 / max; the goal is
//! p99 ≤ 300 ms. Run: `cargo bench -p omniclaw-cli --bench reload`.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use omniclaw_core::config::{self, SecretRef};
use omniclaw_gateway::reload::{self, Candidate, Rebuild};
use omniclaw_gateway::{Addrs, Auth, Gateway, GatewaySpec};

const EDITS: usize = 100;
const GOAL: Duration = Duration::from_millis(300);

struct Bench {
    dir: PathBuf,
    applied: Mutex<mpsc::Sender<(String, Instant)>>,
}

impl Rebuild for Bench {
    fn build(&self, text: &str) -> Result<Candidate, String> {
        let loaded = config::load(text).map_err(|e| e.to_string())?;
        let mut spec = GatewaySpec::new(
            "bench",
            self.dir.join("omniclaw.json"),
            self.dir.clone(),
            self.dir.join("workspace"),
            0,
        );
        spec.browser.enabled = false;
        spec.canvas.enabled = false;
        spec.auth = match &loaded.config.gateway.auth.token {
            Some(SecretRef::Plain(t)) => Auth::Token(t.clone()),
            _ => return Err("bench config needs a plaintext token".into()),
        };
        Ok(Candidate {
            spec,
            config: loaded.config,
            value: loaded.doc.into_value(),
            text: text.to_string(),
        })
    }

    fn applied(&self, c: &Candidate, _addrs: &Addrs) {
        let tx = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        let _ = tx.send((c.text.clone(), Instant::now()));
    }
}

fn text(i: usize) -> String {
    let level = ["debug", "info", "warn"][i % 3];
    format!("{{ gateway: {{ auth: {{ token: 'bench-token' }} }}, logging: {{ level: '{level}' }}, /* edit {i} */ }}\n")
}

fn save(path: &Path, content: &str) {
    let tmp = path.with_file_name(".omniclaw.json.tmp");
    std::fs::write(&tmp, content).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename");
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("omniclaw.json");
    let first_text = text(EDITS + 1);
    std::fs::write(&path, &first_text).expect("write");
    let (tx, rx) = mpsc::channel();
    let bench = Arc::new(Bench {
        dir: dir.path().to_path_buf(),
        applied: Mutex::new(tx),
    });
    let first = bench.build(&first_text).expect("valid");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let bench = bench.clone();
        rt.spawn(async move {
            let bound = Gateway::bind(first.spec.clone()).expect("bind");
            reload::serve_reloading(bound, first, bench, reload::Options::default(), async {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    // The initial apply.
    rx.recv_timeout(Duration::from_secs(5)).expect("started");

    let mut samples = Vec::with_capacity(EDITS);
    for i in 0..EDITS {
        let content = text(i);
        let saved = Instant::now();
        save(&path, &content);
        loop {
            let (applied_text, at) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("edit applied within 5 s");
            if applied_text == content {
                samples.push(at - saved);
                break;
            }
        }
    }
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);

    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = pct(0.99);
    println!(
        "reload hot path (config saved → applied), {EDITS} edits: p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms (goal p99 ≤ {} ms: {})",
        ms(pct(0.50)),
        ms(p99),
        ms(samples[samples.len() - 1]),
        GOAL.as_millis(),
        if p99 <= GOAL { "met" } else { "MISSED" }
    );
}
