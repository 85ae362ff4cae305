//! What the three adapters share: one HTTP client per provider, the request
//! with its timeouts and cancellation, HTTP errors sorted into
//! [`ProviderError`]s (with the key redacted), and the driver that turns a
//! stream of wire frames into [`ProviderEvent`]s, telling a cut stream from
//! a finished one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::io::StreamReader;
use tokio_util::sync::CancellationToken;

use super::{redact_key, EventStream, KeySource, ProviderError, ProviderEvent};
use crate::clock::Clock;

/// Most characters of a provider's error text kept in an error.
const MAX_ERROR_TEXT: usize = 300;

/// Everything an adapter needs to reach its provider.
#[derive(Clone)]
pub struct Endpoint {
    /// The configured id (`models.providers.<id>`).
    pub id: String,
    /// Without a trailing `/`.
    pub base_url: String,
    /// For the connection and for each next piece of an answer.
    pub timeout: Duration,
    /// `maxTokens` of the provider, when a model sets none.
    pub max_tokens: Option<u32>,
    /// Extra headers; values may be secrets (never logged).
    pub headers: Vec<(String, String)>,
    pub keys: Arc<dyn KeySource>,
    /// Turns a `retry-after` HTTP date into a wait.
    pub clock: Arc<dyn Clock>,
}

/// One provider's HTTP side.
#[derive(Clone)]
pub(crate) struct Http {
    pub endpoint: Endpoint,
    client: reqwest::Client,
}

impl Http {
    /// Refuses a plain-http base URL to a public host (validation does too;
    /// this holds for providers built by hand).
    pub fn new(endpoint: Endpoint) -> Result<Http, ProviderError> {
        if let Some(host) = omniclaw_core::config::public_http_host(&endpoint.base_url) {
            return Err(ProviderError::Insecure {
                provider: endpoint.id.clone(),
                host: host.to_string(),
            });
        }
        let client = crate::net::client_builder()
            .connect_timeout(endpoint.timeout)
            // Proxies come from the config or not at all: the agent never
            // reads the process environment.
            .no_proxy()
            .build()
            .map_err(|e| ProviderError::Unreachable {
                provider: endpoint.id.clone(),
                url: endpoint.base_url.clone(),
                detail: e.to_string(),
            })?;
        Ok(Http { endpoint, client })
    }

    pub fn id(&self) -> &str {
        &self.endpoint.id
    }

    /// The key, asked for at each call.
    pub fn key(&self) -> Result<Option<String>, ProviderError> {
        self.endpoint
            .keys
            .api_key(&self.endpoint.id)
            .map_err(|detail| ProviderError::KeyUnreadable {
                provider: self.endpoint.id.clone(),
                detail,
            })
    }

    /// POSTs `body` to `path` and waits (at most the timeout, or until
    /// cancelled) for a successful status; an error status is read and
    /// sorted.
    pub async fn post(
        &self,
        path: &str,
        auth: &[(&str, String)],
        body: &(impl Serialize + Sync),
        key: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<reqwest::Response, ProviderError> {
        let url = format!("{}{path}", self.endpoint.base_url);
        let request = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            // Straight to bytes: `Display` writes through the formatting
            // machinery, a few percent of a turn's CPU. Bodies always
            // serialize (no map has keys that are not strings).
            .body(serde_json::to_vec(body).unwrap_or_default());
        self.send(request, url, auth, key, cancel).await
    }

    /// GETs `path` (a model listing) and reads its whole JSON answer.
    pub async fn get_json(
        &self,
        path: &str,
        auth: &[(&str, String)],
        key: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Value, ProviderError> {
        let url = format!("{}{path}", self.endpoint.base_url);
        let request = self.client.get(&url);
        let response = self.send(request, url, auth, key, cancel).await?;
        self.read_json(response, cancel).await
    }

    /// Sends `request` with the configured and the `auth` headers.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        url: String,
        auth: &[(&str, String)],
        key: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<reqwest::Response, ProviderError> {
        for (name, value) in &self.endpoint.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        for (name, value) in auth {
            request = request.header(*name, value.as_str());
        }
        let sent = tokio::select! {
            // Dropping the future drops the connection.
            _ = cancel.cancelled() => return Err(ProviderError::Aborted),
            r = tokio::time::timeout(self.endpoint.timeout, request.send()) => r,
        };
        let response = match sent {
            Err(_) => return Err(self.timeout()),
            Ok(Err(e)) if e.is_timeout() => return Err(self.timeout()),
            Ok(Err(e)) => {
                return Err(ProviderError::Unreachable {
                    provider: self.endpoint.id.clone(),
                    url,
                    detail: redact(&without_url(e), key),
                })
            }
            Ok(Ok(r)) => r,
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.status_error(response, key, cancel).await)
    }

    /// POSTs and reads a whole JSON answer (Ollama's `/api/show`).
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, ProviderError> {
        let response = self.post(path, &[], body, None, cancel).await?;
        self.read_json(response, cancel).await
    }

    async fn read_json(
        &self,
        response: reqwest::Response,
        cancel: &CancellationToken,
    ) -> Result<Value, ProviderError> {
        let bytes = tokio::select! {
            _ = cancel.cancelled() => return Err(ProviderError::Aborted),
            r = tokio::time::timeout(self.endpoint.timeout, response.bytes()) => r,
        }
        .map_err(|_| self.timeout())?
        .map_err(|e| self.cut(&e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| self.protocol(&e.to_string()))
    }

    async fn status_error(
        &self,
        response: reqwest::Response,
        key: Option<&str>,
        cancel: &CancellationToken,
    ) -> ProviderError {
        let status = response.status().as_u16();
        let retry_after = crate::net::retry_after(response.headers(), self.endpoint.clock.now_ms());
        let body = tokio::select! {
            _ = cancel.cancelled() => None,
            r = tokio::time::timeout(self.endpoint.timeout, response.text()) => r.ok().and_then(Result::ok),
        }
        .unwrap_or_default();
        let message = redact(&error_text(&body), key);
        let provider = self.endpoint.id.clone();
        match status {
            401 => ProviderError::Unauthorized { provider, message },
            403 => ProviderError::Forbidden { provider, message },
            429 => ProviderError::RateLimited {
                provider,
                retry_after,
                message,
            },
            // 408 and Anthropic's 529 "overloaded" are the server's trouble.
            408 | 500..=599 => ProviderError::Server {
                provider,
                status,
                message,
            },
            _ => ProviderError::BadRequest {
                provider,
                status,
                message,
            },
        }
    }

    pub fn timeout(&self) -> ProviderError {
        ProviderError::Timeout {
            provider: self.endpoint.id.clone(),
            after: self.endpoint.timeout,
        }
    }

    pub fn cut(&self, detail: &str) -> ProviderError {
        ProviderError::Cut {
            provider: self.endpoint.id.clone(),
            detail: detail.to_string(),
        }
    }

    pub fn protocol(&self, detail: &str) -> ProviderError {
        ProviderError::Protocol {
            provider: self.endpoint.id.clone(),
            detail: detail.chars().take(MAX_ERROR_TEXT).collect(),
        }
    }
}

/// Turns wire frames into provider events. `frame` sees each frame in
/// order; `end` is called when the body ends and says whether that was the
/// real end (the API's end marker came) or a cut.
pub(crate) trait Decoder: Send + 'static {
    type Frame: Send;
    fn frame(&mut self, frame: Self::Frame) -> Result<Vec<ProviderEvent>, ProviderError>;
    /// Whether the API's end marker was seen (after which the body may end).
    fn finished(&self) -> bool;
}

/// SSE `data:` payloads (and their `event:` names) of a response.
pub(crate) fn sse_frames(
    http: &Http,
    response: reqwest::Response,
) -> BoxStream<'static, Result<(String, String), ProviderError>> {
    let http = http.clone();
    response
        .bytes_stream()
        .eventsource()
        .map(move |item| match item {
            Ok(event) => Ok((event.event, event.data)),
            Err(e) => Err(http.cut(&e.to_string())),
        })
        .boxed()
}

/// The lines of an NDJSON response (Ollama).
pub(crate) fn ndjson_frames(
    http: &Http,
    response: reqwest::Response,
) -> BoxStream<'static, Result<String, ProviderError>> {
    let http = http.clone();
    let bytes = response
        .bytes_stream()
        .map(|r: Result<Bytes, reqwest::Error>| r.map_err(std::io::Error::other));
    FramedRead::new(StreamReader::new(bytes), LinesCodec::new())
        .map(move |line| line.map_err(|e| http.cut(&e.to_string())))
        .boxed()
}

/// Drives `frames` through `decoder`: each next frame must come within the
/// timeout, cancelling ends the stream at once with
/// [`ProviderError::Aborted`] (the response is dropped with it), and a body
/// that ends before the end marker is [`ProviderError::Cut`]. Ends after the
/// first error.
pub(crate) fn drive<S, D>(
    http: &Http,
    frames: S,
    decoder: D,
    cancel: CancellationToken,
) -> EventStream
where
    S: Stream<Item = Result<D::Frame, ProviderError>> + Send + Unpin + 'static,
    D: Decoder,
{
    struct State<S, D> {
        frames: Option<S>,
        decoder: D,
        pending: VecDeque<ProviderEvent>,
        http: Http,
        cancel: CancellationToken,
    }
    let state = State {
        frames: Some(frames),
        decoder,
        pending: VecDeque::new(),
        http: http.clone(),
        cancel,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.pending.pop_front() {
                return Some((Ok(event), st));
            }
            let frames = st.frames.as_mut()?;
            let next = tokio::select! {
                _ = st.cancel.cancelled() => Err(ProviderError::Aborted),
                r = tokio::time::timeout(st.http.endpoint.timeout, frames.next()) => match r {
                    Err(_) => Err(st.http.timeout()),
                    Ok(None) if st.decoder.finished() => return None,
                    Ok(None) => Err(st.http.cut("the body ended before the answer's end marker")),
                    Ok(Some(frame)) => frame,
                },
            };
            match next.and_then(|frame| st.decoder.frame(frame)) {
                Ok(events) => st.pending.extend(events),
                Err(e) => {
                    st.frames = None;
                    return Some((Err(e), st));
                }
            }
        }
    })
    .boxed()
}

/// The human part of an error body: `error.message` (OpenAI, Anthropic),
/// `error` (Ollama), else the text itself; cut short.
fn error_text(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let text = message.unwrap_or_else(|| body.trim().to_string());
    if text.is_empty() {
        return "no details given".to_string();
    }
    text.chars().take(MAX_ERROR_TEXT).collect()
}

fn redact(text: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => redact_key(text, key),
        None => text.to_string(),
    }
}

/// A transport error without the URL reqwest appends (it is shown apart).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_come_from_each_apis_shape() {
        let table = [
            (
                r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#,
                "Incorrect API key",
            ),
            (
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
                "invalid x-api-key",
            ),
            (r#"{"error":"model 'x' not found"}"#, "model 'x' not found"),
            ("Bad Gateway", "Bad Gateway"),
            ("", "no details given"),
        ];
        for (body, expected) in table {
            assert_eq!(error_text(body), expected, "{body}");
        }
        assert_eq!(error_text(&"x".repeat(1000)).len(), MAX_ERROR_TEXT);
    }
}
