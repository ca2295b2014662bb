//! Test harness: the real router on a fresh database per test, spoken to in HTTP JSON.
//!
//! Every case runs on SQLite (a file in a temp dir) and on PostgreSQL (a database created for the
//! test) when `VOXD_TEST_DATABASE_URL` points at a server; without it the PostgreSQL variants say
//! they are skipped and pass.
#![allow(dead_code)]

pub mod voice;

use std::{io::Write, sync::Once};

use axum::{
    body::Body,
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use tower::ServiceExt;
use uuid::Uuid;
use voxd::{
    api::{router, ApiSettings, AppState},
    domain::{api_key, new_id, now},
    store::{keys::ApiKey, teams::Team, Db, DbOptions},
};

pub const PG_ENV: &str = "VOXD_TEST_DATABASE_URL";
/// The secret tests' servers share with the (imaginary) web-call gateway.
pub const WEB_SECRET: &[u8] = b"test-gateway-secret";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub router: Router,
    pub db: Db,
    /// An API key of the main test team.
    pub key: String,
    pub team_id: Uuid,
    pub database_url: String,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the error envelope and returns its message.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        assert_eq!(self.body["success"], false, "error without envelope: {}", self.body);
        self.body["message"].as_str().expect("message").to_owned()
    }

    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        assert_eq!(self.body["success"], true, "{}", self.body);
        &self.body
    }
}

fn say_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Straight to stderr, past the test harness's output capture, so the skip is visible.
        let _ = writeln!(
            std::io::stderr(),
            "note: PostgreSQL variants skipped (set {PG_ENV}=postgres://user@host/db to run them)"
        );
    });
}

impl TestApp {
    /// A fresh app, or `None` when the backend is PostgreSQL and no server is configured.
    pub async fn start(backend: Backend) -> Option<TestApp> {
        // No key cache, so that revocations show at once; `platform.rs` tests the cache itself.
        let settings = ApiSettings {
            requests_per_second: 100_000,
            key_cache_ttl: std::time::Duration::ZERO,
            // Tests refuse many bad keys on purpose; `hardening.rs` tests this limit itself.
            unauthenticated_per_second: 100_000,
            // Receivers run on loopback; `hardening.rs` tests the refusal with its own settings.
            allow_private_network: true,
            web_calls: voxd::api::WebCallSettings {
                secret: WEB_SECRET.to_vec(),
                ice_servers: vec!["stun:stun.voxd.test:3478".into(), "turn:turn.voxd.test:3478".into()],
                sip_domain: Some("sip.voxd.test".into()),
                ..Default::default()
            },
            ..ApiSettings::default()
        };
        Self::start_with(backend, settings).await
    }

    pub async fn start_with(backend: Backend, settings: ApiSettings) -> Option<TestApp> {
        let (url, dir, pg) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("voxd.db").display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let Ok(admin) = std::env::var(PG_ENV) else {
                    say_skipped();
                    return None;
                };
                let name = format!("voxd_test_{}", Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .expect("connect to the test PostgreSQL");
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create test database");
                let url = match admin.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => panic!("{PG_ENV} must end with /DATABASE"),
                };
                (url, None, Some((admin, name)))
            }
        };
        let db = Db::connect(&DbOptions {
            url: url.clone(),
            max_connections: 5,
        })
        .await
        .expect("connect");
        db.migrate().await.expect("migrate");
        let (team_id, key) = create_team(&db, "acme", None).await;
        let router = router(AppState::new(db.clone(), settings));
        Some(TestApp {
            router,
            db,
            key,
            team_id,
            database_url: url,
            pg,
            _dir: dir,
        })
    }

    /// Another team with its own key.
    pub async fn other_team(&self, name: &str) -> (Uuid, String) {
        create_team(&self.db, name, None).await
    }

    /// The backend this app's database runs on.
    pub fn backend(&self) -> Backend {
        if self.database_url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    pub async fn team_with_rate(&self, name: &str, rps: i32) -> (Uuid, String) {
        create_team(&self.db, name, Some(rps)).await
    }

    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some((admin, name)) = self.pg {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        }
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(req).await.expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            raw,
        }
    }

    /// A request with the main key, a JSON body and extra headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(b).unwrap())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None, &[]).await
    }

    /// A CSV upload (an import) with the main key, under this content type.
    pub async fn post_csv(&self, path: &str, content_type: &str, csv: impl Into<String>) -> TestResponse {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(csv.into()))
            .unwrap();
        self.send(req).await
    }

    /// A request with another key (or none) and a raw body.
    pub async fn raw(&self, method: Method, path: &str, key: Option<&str>, body: impl Into<Body>) -> TestResponse {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
        }
        self.send(req.body(body.into()).unwrap()).await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: &Value) -> TestResponse {
        self.raw(Method::POST, path, Some(key), serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> TestResponse {
        self.raw(Method::GET, path, Some(key), Body::empty()).await
    }

    /// How many rows a table has (to prove failed requests wrote nothing).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.db {
            Db::Sqlite { read, .. } => sqlx::query_scalar(&sql).fetch_one(read).await.unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        }
    }
}

pub async fn create_team(db: &Db, name: &str, rps: Option<i32>) -> (Uuid, String) {
    let team = Team {
        id: new_id(),
        name: name.to_owned(),
        region: "AU".into(),
        timezone: "Australia/Sydney".into(),
        requests_per_second: rps,
        max_concurrent_calls: None,
        created_at: now(),
        recordings: true,
    };
    db.create_team(&team).await.expect("create team");
    let generated = api_key::generate();
    let key = ApiKey {
        id: new_id(),
        team_id: team.id,
        name: Some("test".into()),
        prefix: generated.prefix.clone(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    db.create_key(&key, &generated.hash).await.expect("create key");
    (team.id, generated.secret)
}

/// Declares each listed `async fn name(app: &TestApp)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::common::TestApp::start($crate::common::Backend::Sqlite).await.unwrap();
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::common::TestApp::start($crate::common::Backend::Postgres).await {
                        super::$name(&app).await;
                        app.cleanup().await;
                    }
                }
            )*
        }
    };
}

/// `voxd serve` as a real process on a free port, on the app's database, with a config file.
pub fn spawn_serve(app: &TestApp, config: &std::path::Path) -> std::process::Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::process::Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
            config.to_str().unwrap(),
        ])
        .env("VOXD_DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start voxd serve")
}

/// The caller id calls are placed from in tests.
pub const CALLER_ID: &str = "+61291234567";

/// An example script from `examples/scripts/`, as the JSON the API takes.
pub fn example_script(name: &str) -> Value {
    let path = format!("{}/examples/scripts/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let script =
        voxd::conversation::script::Script::from_yaml_or_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::to_value(script).unwrap()
}

/// Gives the main team the caller id and the buyer follow-up script; returns the script's id.
pub async fn caller_id_and_script(app: &TestApp) -> String {
    number_and_script(app, app.team_id, &app.key, CALLER_ID).await
}

/// Gives a team (by id and key) a caller id and the buyer follow-up script; returns the script's id.
pub async fn number_and_script(app: &TestApp, team_id: Uuid, key: &str, number: &str) -> String {
    let n = voxd::store::numbers::PhoneNumber {
        id: new_id(),
        team_id,
        number: number.into(),
        inbound_script_id: None,
        trunk_id: None,
        twilio: false,
        created_at: now(),
    };
    app.db.add_number(&n).await.unwrap();
    let r = app
        .post_as(key, "/api/v1/scripts", &example_script("buyer-follow-up"))
        .await;
    r.ok(201)["script_id"].as_str().unwrap().to_owned()
}

/// A dispatcher on the app's database with the `sim` carrier (no delays) and the rules brain.
pub fn sim_dispatcher(app: &TestApp, clock: std::sync::Arc<voxd::clock::ManualClock>) -> voxd::dispatcher::Dispatcher {
    use std::sync::Arc;
    use voxd::{
        carrier::sim::{SimCarrier, SimDelays},
        conversation::{
            brain::rules::RulesBrain,
            tools::{RecordingSms, Tools},
        },
        dispatcher::{Dispatcher, DispatcherSettings},
    };
    let tools = Tools::new(true, Arc::new(RecordingSms::default()));
    Dispatcher::new(
        app.db.clone(),
        clock,
        Arc::new(SimCarrier {
            delays: SimDelays::default(),
        }),
        Arc::new(RulesBrain),
        Arc::new(tools),
        DispatcherSettings {
            calls_per_second_per_number: 0,
            ..Default::default()
        },
    )
}

/// What a [`Receiver`] was sent: headers (lower-case names) and JSON body.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: std::collections::HashMap<String, String>,
    pub body: Value,
}

/// An HTTP server on 127.0.0.1 that records every POST and answers 200, or 503 while `down`.
pub struct Receiver {
    pub url: String,
    pub got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    pub down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        use axum::{extract::State, http::HeaderMap, routing::post};
        use std::sync::{atomic::AtomicBool, Arc, Mutex};
        type Shared = (Arc<Mutex<Vec<Received>>>, Arc<AtomicBool>);
        async fn record(
            State((got, down)): State<Shared>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> (axum::http::StatusCode, axum::Json<Value>) {
            got.lock().unwrap().push(Received {
                path: uri.path().to_owned(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                    .collect(),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
            if down.load(std::sync::atomic::Ordering::SeqCst) {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({"error": "down"})),
                )
            } else {
                (
                    axum::http::StatusCode::OK,
                    axum::Json(serde_json::json!({"ok": true, "crm_id": "crm-42"})),
                )
            }
        }
        let got = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let app = axum::Router::new()
            .route("/{*path}", post(record))
            .with_state((got.clone(), down.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, got, down, task }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An automation runner on the app's database for tests: loopback allowed, short retries.
pub fn test_runner(
    app: &TestApp,
    notifier: std::sync::Arc<dyn voxd::automations::notify::Notifier>,
) -> voxd::automations::Runner {
    voxd::automations::Runner::new(
        app.db.clone(),
        std::sync::Arc::new(voxd::clock::SystemClock),
        notifier,
        voxd::automations::AutomationSettings {
            allow_private_network: true,
            retry_base: std::time::Duration::from_millis(20),
            retry_cap: std::time::Duration::from_millis(100),
            step_attempts: 3,
            delivery_attempts: 50,
            ..Default::default()
        },
    )
}

/// Hex HMAC-SHA256 of a body, as `X-Webhook-Signature` wants it.
pub fn hook_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs each (path, body) with the main key, all at once; the statuses, in completion order.
pub async fn post_all_at_once(app: &TestApp, requests: Vec<(String, Value)>) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for (path, body) in requests {
        let (router, key) = (app.router.clone(), app.key.clone());
        tasks.spawn(async move {
            let req = Request::post(path)
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            router.oneshot(req).await.unwrap().status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses
}

/// The app's router served in-process on a free loopback port, for real clients (a browser, a
/// generated client); the server stops with the test's runtime.
pub async fn serve_in_process(app: &TestApp) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Whether a tool the browser tests need is here; without it they skip and say so, unless
/// `VOXD_REQUIRE_BROWSER` is set (CI sets it, so a missing install fails there).
pub fn browser_available() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!std::path::Path::new(&chromium).exists()).then_some("chromium (apt install chromium)"),
        (!dir.join("node_modules/playwright-core").exists()).then_some("playwright-core (npm ci in tests/browser)"),
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_err()
            .then_some("node"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("VOXD_REQUIRE_BROWSER").is_none(),
        "VOXD_REQUIRE_BROWSER is set but these are missing: {missing:?}"
    );
    eprintln!("browser test skipped: missing {}", missing.join(", "));
    false
}

/// Runs a script of `tests/browser` with node; returns its one JSON line and whether it exited 0.
pub async fn run_browser_script(script: &str, args: &[&str]) -> (Value, bool) {
    // One browser at a time per test binary: two Chromium calls beside live speech recognition
    // overload two cores, and a call whose timing slips fails for the wrong reason.
    static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_BROWSER.lock().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
        .await
        .expect("the browser script finished within 2 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let report = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "browser script printed no JSON report: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.success())
}

/// A dashboard user of the team with this password.
pub async fn add_user(db: &Db, team_id: Uuid, email: &str, password: &str) {
    let user = voxd::store::users::User {
        id: new_id(),
        team_id,
        email: email.into(),
        password_hash: voxd::domain::password::hash(password),
        created_at: now(),
        last_signed_in_at: None,
    };
    db.create_user(&user).await.unwrap();
}
