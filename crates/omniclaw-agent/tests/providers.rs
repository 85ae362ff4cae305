//! Each adapter on its own against the double: errors sorted into
//! `ProviderError`s, a cut body told from a finished one, cancellation.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use omniclaw_agent::clock::ManualClock;
use omniclaw_agent::double::{Double, Reply};
use omniclaw_agent::message::{Message, UserMessage};
use omniclaw_agent::provider::{self, CompletionRequest, Provider, ProviderError, ProviderEvent};
use support::*;
use tokio_util::sync::CancellationToken;

/// A provider built by hand (validation would refuse some of these URLs).
fn provider_at(base_url: &str, api: &str) -> Result<Arc<dyn Provider>, ProviderError> {
    let text = format!(
        "{{ models: {{ providers: {{ p: {{ baseUrl: 'https://placeholder', api: '{api}', timeoutSeconds: 2, models: [] }} }} }} }}"
    );
    let mut config = agent_config(&text);
    config.providers[0].base_url = base_url.to_string();
    let keys = Keys([("p".to_string(), KEY.to_string())].into_iter().collect());
    let clock = Arc::new(ManualClock::new(NOW, 0));
    provider::build(&config.providers[0], Arc::new(keys), clock, Vec::new())
}

fn ask() -> CompletionRequest {
    CompletionRequest {
        model: "m".into(),
        system: String::new(),
        messages: vec![Message::User(UserMessage {
            content: "hi".into(),
            timestamp: 0,
            idempotency_key: None,
        })]
        .into(),
        tools: Vec::new().into(),
        max_tokens: None,
        context_window: None,
    }
}

/// Every item of one call: events, then the error that ended it, if any.
async fn call(p: &dyn Provider) -> (Vec<ProviderEvent>, Option<ProviderError>) {
    let mut stream = match p.stream(ask(), CancellationToken::new()).await {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

#[tokio::test]
async fn http_errors_are_sorted() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        let p = provider_at(&double.base_url(api), api).expect("provider");
        double.push(Reply::rate_limited("45"));
        double.push(Reply::rate_limited("Sat, 05 Dec 2026 22:01:30 GMT"));
        double.push(Reply::forbidden());
        double.push(Reply::server_error());
        double.push(Reply::status(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ));
        double.push(Reply::status(400, r#"{"error":"model 'm' not found"}"#));
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(call(p.as_ref()).await.1.expect("an error"));
        }
        assert!(
            matches!(&got[0], ProviderError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(45)),
            "{api}: {got:?}"
        );
        // An HTTP date 90 s after the injected clock's now (2026-12-05 22:00 UTC).
        assert!(
            matches!(&got[1], ProviderError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(90)),
            "{api}: {got:?}"
        );
        assert!(
            matches!(&got[2], ProviderError::Forbidden { message, .. } if message == "this key may not use the model"),
            "{api}"
        );
        assert!(
            matches!(&got[3], ProviderError::Server { status: 500, .. }),
            "{api}"
        );
        assert!(
            matches!(&got[4], ProviderError::Server { status: 529, message, .. } if message == "Overloaded"),
            "{api}"
        );
        assert!(
            matches!(&got[5], ProviderError::BadRequest { status: 400, message, .. } if message == "model 'm' not found"),
            "{api}"
        );
        assert!(got.iter().take(5).all(ProviderError::falls_over));
        assert!(
            !got[5].falls_over(),
            "a bad request is not the provider being down"
        );
    }
}

#[tokio::test]
async fn a_body_ending_before_its_end_marker_is_a_cut() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        let p = provider_at(&double.base_url(api), api).expect("provider");
        // Inside a frame, and cleanly between frames: both before the end marker.
        let text = "a long enough answer to cut in two";
        for cut in [Reply::cut(text, 500), Reply::cut_after_frames(text, 4)] {
            double.push(cut);
            let (events, error) = call(p.as_ref()).await;
            assert!(
                matches!(error, Some(ProviderError::Cut { .. })),
                "{api}: {error:?}"
            );
            assert!(
                events
                    .iter()
                    .any(|e| matches!(e, ProviderEvent::TextDelta(_))),
                "{api}: the text before the cut came"
            );
            assert!(
                !events.iter().any(|e| matches!(e, ProviderEvent::Done(_))),
                "{api}"
            );
        }
        // The whole body: no error, and Done last.
        double.push(Reply::text("whole"));
        let (events, error) = call(p.as_ref()).await;
        assert!(error.is_none(), "{api}: {error:?}");
        assert!(
            matches!(events.last(), Some(ProviderEvent::Done(_))),
            "{api}"
        );
    }
}

#[tokio::test]
async fn cancelling_ends_the_stream_at_once() {
    for api in APIS {
        let double = Double::start().await.expect("double");
        let p = provider_at(&double.base_url(api), api).expect("provider");
        double.push(
            Reply::text("x".repeat(100))
                .chunked(20)
                .delayed(Duration::from_millis(300)),
        );
        let cancel = CancellationToken::new();
        let mut stream = p.stream(ask(), cancel.clone()).await.expect("stream");
        let at = std::time::Instant::now();
        cancel.cancel();
        let next = stream.next().await;
        assert!(
            matches!(next, Some(Err(ProviderError::Aborted))),
            "{api}: {next:?}"
        );
        assert!(
            stream.next().await.is_none(),
            "{api}: nothing after the abort"
        );
        assert!(
            at.elapsed() < Duration::from_millis(200),
            "{api}: {:?}",
            at.elapsed()
        );
        // A cancel before the answer's head drops the request too.
        double.push(Reply::hang());
        let cancel = CancellationToken::new();
        cancel.cancel();
        let r = p.stream(ask(), cancel).await;
        assert!(matches!(r, Err(ProviderError::Aborted)), "{api}");
    }
}

#[tokio::test]
async fn plain_http_to_a_public_host_is_refused() {
    for api in APIS {
        let refused = provider_at("http://93.184.216.34/v1", api);
        match refused {
            Err(e @ ProviderError::Insecure { .. }) => {
                assert!(
                    e.to_string()
                        .contains("set models.providers.p.baseUrl to an https:// URL"),
                    "{e}"
                );
            }
            Err(e) => panic!("{api}: {e}"),
            Ok(_) => panic!("{api}: accepted"),
        }
        assert!(provider_at("https://93.184.216.34/v1", api).is_ok());
        assert!(provider_at("http://192.168.1.9:11434", api).is_ok());
    }
}
