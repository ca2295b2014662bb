//! Prometheus metrics at `/metrics` (the `prometheus` crate's registry and text encoder).
//! Counters and histograms of what this process does (HTTP requests, dispatch lateness, speech
//! and brain latencies) live in one process-wide registry; gauges of what the platform holds
//! (calls by progress and status, live and queued calls, executions and deliveries by outcome)
//! are read from the shared database when scraped, so every node reports the same totals.
//! Labels carry route templates, engine names and team names, never ids, numbers or words said.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::store::{Db, StoreError};

/// Latency buckets in seconds: 5 ms to 30 s.
const LATENCY: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub dispatch_lateness: Histogram,
    pub stt: HistogramVec,
    pub tts: HistogramVec,
    pub brain: HistogramVec,
    calls: IntGaugeVec,
    live_calls: IntGaugeVec,
    queued_calls: IntGaugeVec,
    executions: IntGaugeVec,
    deliveries: IntGaugeVec,
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY.to_vec()), labels).expect("valid histogram")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge")
}

impl Metrics {
    fn new() -> Self {
        let m = Metrics {
            registry: Registry::new(),
            http_requests: IntCounterVec::new(
                Opts::new(
                    "voxd_http_requests_total",
                    "HTTP requests by route template, method and status.",
                ),
                &["route", "method", "status"],
            )
            .expect("valid counter"),
            http_duration: histogram(
                "voxd_http_request_duration_seconds",
                "HTTP request latency by route template and method.",
                &["route", "method"],
            ),
            dispatch_lateness: Histogram::with_opts(
                HistogramOpts::new(
                    "voxd_dispatch_lateness_seconds",
                    "How long after its due time a call was taken by a dispatcher.",
                )
                .buckets(LATENCY.to_vec()),
            )
            .expect("valid histogram"),
            stt: histogram(
                "voxd_stt_seconds",
                "Speech-to-text time per utterance, by engine.",
                &["engine"],
            ),
            tts: histogram(
                "voxd_tts_seconds",
                "Text-to-speech time per sentence (to its audio), by engine.",
                &["engine"],
            ),
            brain: histogram(
                "voxd_brain_seconds",
                "Brain time per request, by brain and operation (decide, compose, analyse).",
                &["brain", "operation"],
            ),
            calls: gauge(
                "voxd_calls",
                "Calls by progress and status (status empty until a call ends).",
                &["progress", "status"],
            ),
            live_calls: gauge(
                "voxd_live_calls",
                "Calls dialling, ringing or under way, by type.",
                &["type"],
            ),
            queued_calls: gauge(
                "voxd_queued_calls",
                "Calls due and waiting for a free line, by team.",
                &["team"],
            ),
            executions: gauge("voxd_executions", "Automation executions by status.", &["status"]),
            deliveries: gauge("voxd_webhook_deliveries", "Webhook deliveries by status.", &["status"]),
        };
        for c in [
            Box::new(m.http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.http_duration.clone()),
            Box::new(m.dispatch_lateness.clone()),
            Box::new(m.stt.clone()),
            Box::new(m.tts.clone()),
            Box::new(m.brain.clone()),
            Box::new(m.calls.clone()),
            Box::new(m.live_calls.clone()),
            Box::new(m.queued_calls.clone()),
            Box::new(m.executions.clone()),
            Box::new(m.deliveries.clone()),
        ] {
            m.registry.register(c).expect("each family registered once");
        }
        m
    }

    /// Reads the database's gauges, then renders every family in the text format.
    pub async fn render(&self, db: &Db) -> Result<String, StoreError> {
        let snapshot = db.platform_counts().await?;
        let set = |g: &IntGaugeVec, rows: &[(Vec<String>, i64)]| {
            g.reset();
            for (labels, n) in rows {
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                g.with_label_values(&labels).set(*n);
            }
        };
        set(&self.calls, &snapshot.calls);
        set(&self.live_calls, &snapshot.live_calls);
        set(&self.queued_calls, &snapshot.queued_calls);
        set(&self.executions, &snapshot.executions);
        set(&self.deliveries, &snapshot.deliveries);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| StoreError::Settings(format!("metrics encoding: {e}")))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Times a future into a histogram with these labels.
pub async fn timed<T>(h: &HistogramVec, labels: &[&str], f: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = f.await;
    h.with_label_values(labels).observe(started.elapsed().as_secs_f64());
    out
}
