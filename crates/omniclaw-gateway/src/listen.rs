//! Serving one surface's listener: HTTP/1.1 with a deadline for request
//! headers, and a cap on connections that have not authenticated.
//!
//! Every accepted connection takes a place among the surface's connections
//! that have not authenticated ([`Pending`]); when the surface holds its
//! cap, further clients wait in the listen queue until a place frees. A
//! WebSocket gives its place back the moment its `connect` is accepted, so
//! authenticated connections are limited only by the open-file limit; the
//! canvas and the browser control service never authenticate a connection,
//! so their cap is simply how many connections they serve at once. Each
//! surface has its own cap, so idle connections to the canvas never keep a
//! client from the control plane. A connection that sends no complete
//! request head within the header timeout — idle from the start, between
//! requests, or dripping its headers — is closed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::Service;

/// A connection's place among those that have not authenticated, given
/// back when the connection ends or authenticates, whichever comes first.
/// Handlers find it in the request's extensions.
#[derive(Clone)]
pub(crate) struct Pending(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl Pending {
    /// The connection proved its credentials: it no longer counts.
    pub fn authenticated(&self) {
        let permit = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(permit);
    }
}

/// How one surface accepts connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    /// Connections of this surface that have not authenticated, at most.
    pub cap: usize,
    /// Time a client has to send a complete request head.
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `stop` turns true (or its sender is
/// dropped), then stops accepting and lets every connection finish its
/// request and close.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    admission: Admission,
    nodelay: bool,
    mut stop: watch::Receiver<bool>,
) {
    let places = Arc::new(Semaphore::new(admission.cap.max(1)));
    // Every connection task holds a receiver; the sender learns when the
    // last one is gone.
    let (drained_tx, drained_rx) = watch::channel(());
    loop {
        let place = tokio::select! {
            p = places.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        if nodelay {
            let _ = tcp.set_nodelay(true);
        }
        let pending = Pending(Arc::new(Mutex::new(Some(place))));
        let service = {
            let router = router.clone();
            let pending = pending.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(pending.clone());
                let mut router = router.clone();
                async move { router.call(req).await }
            })
        };
        let mut stop = stop.clone();
        let drained = drained_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(admission.header_timeout)
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            // The place is given back with the last handle (an upgraded
            // WebSocket may still hold one).
            drop(pending);
            drop(drained);
        });
    }
    drop(listener);
    drop(drained_rx);
    drained_tx.closed().await;
}

/// Resolves once `stop` turns true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns may not live across an await: drop it here.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// What to do after `accept` failed: a connection that was reset before it
/// was accepted is nobody's problem; anything else (out of file
/// descriptors) passes only with time, so wait a moment before trying again.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
