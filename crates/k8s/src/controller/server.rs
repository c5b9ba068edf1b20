//! The controller's HTTP server: `/metrics` (OpenMetrics), `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::metrics::Metrics;

/// Serves `/metrics`, `/healthz` and `/readyz` (ready once `ready` is set) on `addr` until aborted.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let r = ready.clone();
                async move {
                    if r.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        );
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
            if let Err(e) = axum::serve(l, app).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        }
        Err(e) => tracing::error!(%addr, error = %e, "cannot bind the metrics address"),
    }
}
