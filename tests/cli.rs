//! The `voxd` binary: team and key commands, and `serve` as a real process.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::TestApp;
use serde_json::json;

fn voxd(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(args)
        .env("VOXD_DATABASE_URL", &app.database_url)
        .env_remove("VOXD_CONFIG")
        .output()
        .expect("run voxd")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "voxd failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

async fn teams_and_keys_from_the_command_line(app: &TestApp) {
    let id = stdout(&voxd(
        app,
        &[
            "team",
            "create",
            "initech",
            "--region",
            "NZ",
            "--timezone",
            "Pacific/Auckland",
        ],
    ));
    uuid::Uuid::parse_str(id.trim()).expect("team create prints the id");
    assert!(
        !voxd(app, &["team", "create", "initech"]).status.success(),
        "duplicate names are refused"
    );
    assert!(!voxd(app, &["team", "create", "x", "--region", "ZZ"]).status.success());
    assert!(!voxd(app, &["team", "create", "x", "--timezone", "Nowhere/Land"])
        .status
        .success());

    let out = stdout(&voxd(
        app,
        &["key", "create", "--team", "initech", "--name", "crm sync"],
    ));
    let key = out.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("vxd_") && key.len() > 40, "{out}");
    // The key works, and numbers are read in the team's region (NZ).
    let r = app
        .post_as(&key, "/api/v1/create-contact", &json!({"phone_number": "021 123 4567"}))
        .await;
    assert_eq!(r.ok(201)["contact"]["phone_number"], "+64211234567");
    // By id as well as by name.
    stdout(&voxd(app, &["key", "create", "--team", id.trim()]));

    let listing = stdout(&voxd(app, &["key", "list", "--team", "initech"]));
    assert!(listing.contains("crm sync") && listing.contains(&key[..12]));
    assert!(!listing.contains(&key), "the key itself is never listed");
    let key_id = listing
        .lines()
        .find(|l| l.contains("crm sync"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    stdout(&voxd(app, &["key", "revoke", &key_id]));
    assert!(
        !voxd(app, &["key", "revoke", &key_id]).status.success(),
        "revoking twice says so"
    );
    app.post_as(&key, "/api/v1/create-contact", &json!({"phone_number": "021 123 4568"}))
        .await
        .error(401);
    assert!(stdout(&voxd(app, &["key", "list", "--team", "initech"])).contains("revoked"));

    stdout(&voxd(
        app,
        &["team", "set-limits", "initech", "--requests-per-second", "7"],
    ));
    assert!(stdout(&voxd(app, &["team", "list"])).contains("initech"));
    assert!(!voxd(app, &["key", "create", "--team", "nobody"]).status.success());
    stdout(&voxd(app, &["migrate"]));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

async fn serve_runs_and_stops_gracefully(app: &TestApp) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["serve", "--listen", &listen, "--log-format", "json"])
        .env("VOXD_DATABASE_URL", &app.database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start voxd serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        if let Some(r) = http_get(port, "/api/v1/health") {
            break r;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-request-id:"));

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful stop exits 0");
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let first = logs.lines().next().expect("a log line");
    let parsed: serde_json::Value = serde_json::from_str(first).expect("JSON logs");
    assert!(parsed["fields"]["message"].as_str().is_some(), "{first}");
    assert!(logs.contains("in-flight requests finished"));
}

async fn script_import_stores_valid_scripts_only(app: &TestApp) {
    let file = format!("{}/examples/scripts/receptionist.yaml", env!("CARGO_MANIFEST_DIR"));
    let id = stdout(&voxd(app, &["script", "import", "--team", "acme", &file]));
    let r = app.get(&format!("/api/v1/scripts/{}", id.trim())).await;
    assert_eq!(r.ok(200)["script"]["type"], "inbound");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("next: take_details", "next: nowhere");
    std::fs::write(&bad, text).unwrap();
    let out = voxd(app, &["script", "import", "--team", "acme", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flows.main.steps.greet.conditions[0]") && err.contains("nowhere"),
        "{err}"
    );
    assert_eq!(app.count("scripts").await, 1);
}

async fn automation_import_prints_the_hook_once(app: &TestApp) {
    let dir = format!("{}/examples/automations", env!("CARGO_MANIFEST_DIR"));
    let out = stdout(&voxd(
        app,
        &[
            "automation",
            "import",
            "--team",
            "acme",
            &format!("{dir}/web-form-lead.yaml"),
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    let id = uuid::Uuid::parse_str(lines[0]).expect("the id first");
    assert!(lines[1].starts_with("hook: /api/v1/hooks/hk_"), "{out}");
    assert!(lines[2].starts_with("secret: whsec_"), "{out}");
    let r = app.get(&format!("/api/v1/automations/{id}")).await;
    assert_eq!(r.ok(200)["automation"]["name"], "Web form lead");
    let out = stdout(&voxd(
        app,
        &[
            "automation",
            "import",
            "--team",
            "acme",
            &format!("{dir}/call-results-to-crm.yaml"),
        ],
    ));
    assert_eq!(out.lines().count(), 1, "no hook for a call trigger: {out}");

    let bad = tempfile::tempdir().unwrap();
    let file = bad.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: x\ntrigger: {type: webhook}\nsteps:\n  - {type: condition, field: call.status, operator: is_empty}\n",
    )
    .unwrap();
    let out = voxd(app, &["automation", "import", "--team", "acme", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("steps[0].field") && err.contains("cannot exist here"),
        "{err}"
    );
    assert_eq!(app.count("automations").await, 2);
}

async fn simulate_inbound_answers_with_the_numbers_script(app: &TestApp) {
    let file = format!("{}/examples/scripts/receptionist.yaml", env!("CARGO_MANIFEST_DIR"));
    let script = stdout(&voxd(app, &["script", "import", "--team", "acme", &file]))
        .trim()
        .to_owned();
    assert!(
        !voxd(
            app,
            &["simulate", "inbound", "--to", "0291234567", "--from", "0412345678"]
        )
        .status
        .success(),
        "unknown number"
    );
    stdout(&voxd(
        app,
        &[
            "number",
            "add",
            "--team",
            "acme",
            "0291234567",
            "--inbound-script",
            &script,
        ],
    ));
    assert!(
        !voxd(app, &["number", "add", "--team", "acme", "+61 2 9123 4567"])
            .status
            .success(),
        "added twice"
    );
    stdout(&voxd(app, &["number", "add", "--team", "acme", "0291234568"]));
    assert!(
        !voxd(
            app,
            &["simulate", "inbound", "--to", "0291234568", "--from", "0412345678"]
        )
        .status
        .success(),
        "no inbound script"
    );
    assert!(stdout(&voxd(app, &["number", "list", "--team", "acme"])).contains("+61291234567"));

    let out = stdout(&voxd(
        app,
        &["simulate", "inbound", "--to", "(02) 9123 4567", "--from", "0412345678"],
    ));
    let id = out.lines().next().unwrap().trim().to_owned();
    assert!(out.contains("assistant › Thanks for calling Harbour Realty"), "{out}");
    let call = app.get(&format!("/api/v1/get-call/{id}")).await;
    let c = &call.ok(200)["call"];
    assert_eq!(
        (c["type"].as_str(), c["progress"].as_str()),
        (Some("inbound"), Some("ended"))
    );
    assert_eq!(c["from_number"], "+61412345678");
    assert_eq!(c["to_number"], "+61291234567");
    let result = app.get(&format!("/api/v1/get-call-result/{id}")).await;
    assert_eq!(result.ok(200)["call"]["simulated"], true);
    // The default persona asks for an appraisal; the summary says so in the callee's terms.
    let summary = result.body["call"]["summary"].as_str().unwrap();
    assert!(summary.contains("wants to sell, rent or get an appraisal"), "{summary}");
}

fn stderr(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "voxd should have failed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Scripts, automations and numbers are listed, shown, changed and removed from the command line;
/// what is missing is named with the database looked in.
async fn operators_manage_scripts_automations_and_numbers(app: &TestApp) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let inbound = stdout(&voxd(
        app,
        &[
            "script",
            "import",
            "--team",
            "acme",
            &format!("{dir}/examples/scripts/receptionist.yaml"),
        ],
    ))
    .trim()
    .to_owned();
    let outbound = stdout(&voxd(
        app,
        &[
            "script",
            "import",
            "--team",
            "acme",
            &format!("{dir}/examples/scripts/buyer-follow-up.yaml"),
        ],
    ))
    .trim()
    .to_owned();
    let listed = stdout(&voxd(app, &["script", "list", "--team", "acme"]));
    assert!(listed.contains(&inbound) && listed.contains(&outbound), "{listed}");
    assert!(listed.contains("inbound") && listed.contains("outbound"), "{listed}");
    let shown = stdout(&voxd(app, &["script", "show", "--team", "acme", &outbound]));
    assert!(shown.contains("main_flow_id:"), "{shown}");
    // What `show` prints, `import` reads back.
    let copy = std::env::temp_dir().join(format!("voxd-script-{}.yaml", uuid::Uuid::now_v7()));
    std::fs::write(&copy, &shown).unwrap();
    let copied = stdout(&voxd(
        app,
        &["script", "import", "--team", "acme", copy.to_str().unwrap()],
    ));
    std::fs::remove_file(&copy).unwrap();
    stdout(&voxd(app, &["script", "delete", "--team", "acme", copied.trim()]));
    let gone = stderr(&voxd(app, &["script", "show", "--team", "acme", copied.trim()]));
    assert!(
        gone.contains("has no script") && gone.contains("in the database"),
        "{gone}"
    );

    // Numbers: add, point at another script, stop answering, remove.
    stdout(&voxd(app, &["number", "add", "--team", "acme", "0291234567"]));
    let r = stderr(&voxd(
        app,
        &[
            "number",
            "update",
            "--team",
            "acme",
            "0291234567",
            "--inbound-script",
            &outbound,
        ],
    ));
    assert!(r.contains("outbound script"), "{r}");
    let r = stdout(&voxd(
        app,
        &[
            "number",
            "update",
            "--team",
            "acme",
            "+61 2 9123 4567",
            "--inbound-script",
            &inbound,
        ],
    ));
    assert!(r.contains(&inbound), "{r}");
    assert!(stdout(&voxd(app, &["number", "list", "--team", "acme"])).contains(&inbound));
    let r = stdout(&voxd(
        app,
        &[
            "number",
            "update",
            "--team",
            "acme",
            "0291234567",
            "--no-inbound-script",
        ],
    ));
    assert!(r.contains("not answered"), "{r}");
    stderr(&voxd(app, &["number", "update", "--team", "acme", "0291234567"]));
    let r = stderr(&voxd(app, &["number", "remove", "--team", "acme", "0299999999"]));
    assert!(r.contains("no such number") && r.contains("in the database"), "{r}");
    stdout(&voxd(app, &["number", "remove", "--team", "acme", "0291234567"]));
    assert!(!stdout(&voxd(app, &["number", "list", "--team", "acme"])).contains("+61291234567"));

    // Automations: list and show.
    let automation = stdout(&voxd(
        app,
        &[
            "automation",
            "import",
            "--team",
            "acme",
            &format!("{dir}/examples/automations/web-form-lead.yaml"),
        ],
    ));
    let id = automation.lines().next().unwrap().trim().to_owned();
    let listed = stdout(&voxd(app, &["automation", "list", "--team", "acme"]));
    assert!(listed.contains(&id) && listed.contains("webhook"), "{listed}");
    let shown = stdout(&voxd(app, &["automation", "show", "--team", "acme", &id]));
    assert!(shown.contains("enabled") && shown.contains("steps:"), "{shown}");

    // Missing teams name the database.
    let r = stderr(&voxd(app, &["script", "list", "--team", "nobody"]));
    assert!(r.contains("no team named or with id `nobody` in the database"), "{r}");
}

async fn operators_keep_a_do_not_call_list(app: &TestApp) {
    let added = stdout(&voxd(
        app,
        &[
            "dnc",
            "add",
            "--team",
            "acme",
            "0429 069 971",
            "--reason",
            "asked by email",
        ],
    ));
    assert_eq!(added.trim(), "+61429069971 added");
    let again = stdout(&voxd(app, &["dnc", "add", "--team", "acme", "+61429069971"]));
    assert_eq!(again.trim(), "+61429069971 listed already");
    assert!(!voxd(app, &["dnc", "add", "--team", "acme", "hello"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("dnc.csv");
    std::fs::write(&csv, "phone_number,reason\n0429069972,form\nnope,\n0429069971,dup\n").unwrap();
    let imported = voxd(app, &["dnc", "import", "--team", "acme", csv.to_str().unwrap()]);
    assert_eq!(stdout(&imported).trim(), "1 added, 1 listed already, 1 refused");
    let warned = String::from_utf8_lossy(&imported.stderr);
    assert!(warned.contains("line 3"), "{warned}");
    let listed = stdout(&voxd(app, &["dnc", "list", "--team", "acme"]));
    assert!(
        listed.contains("+61429069971") && listed.contains("asked by email"),
        "{listed}"
    );
    assert!(listed.contains("+61429069972") && listed.contains("form"), "{listed}");
    let removed = stdout(&voxd(app, &["dnc", "remove", "--team", "acme", "0429069971"]));
    assert!(removed.contains("+61429069971 removed"), "{removed}");
    let r = stderr(&voxd(app, &["dnc", "remove", "--team", "acme", "0429069971"]));
    assert!(r.contains("not") && r.contains("in the database"), "{r}");
    // Retention belongs with what a team keeps.
    let set = stdout(&voxd(app, &["team", "set-retention", "acme", "--recordings", "30"]));
    assert_eq!(set.trim(), "team acme keeps recordings 30 days and transcripts forever");
    let shown = stdout(&voxd(app, &["team", "show", "acme"]));
    assert!(
        shown.contains("recordings kept: 30 days") && shown.contains("transcripts kept: forever"),
        "{shown}"
    );
    stdout(&voxd(
        app,
        &[
            "team",
            "set-retention",
            "acme",
            "--recordings",
            "forever",
            "--transcripts",
            "7",
        ],
    ));
    let shown = stdout(&voxd(app, &["team", "show", "acme"]));
    assert!(
        shown.contains("recordings kept: forever") && shown.contains("transcripts kept: 7 days"),
        "{shown}"
    );
    assert!(!voxd(app, &["team", "set-retention", "acme", "--recordings", "0"])
        .status
        .success());
}

/// `voxd ARGS` on the app's database with `input` on its standard input.
fn voxd_with_stdin(app: &TestApp, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(args)
        .env("VOXD_DATABASE_URL", &app.database_url)
        .env_remove("VOXD_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `voxd user`: add (password from stdin, the environment, or generated and shown once), list,
/// set-password, remove; what it stores signs in.
async fn dashboard_users_from_the_command_line(app: &TestApp) {
    let with_stdin = |args: &[&str], input: &str| voxd_with_stdin(app, args, input);
    let out = with_stdin(
        &["user", "add", "--team", "acme", "Ops@Acme.test", "--password-stdin"],
        "long enough pass\n",
    );
    assert!(stdout(&out).contains("Added dashboard user ops@acme.test"));
    let user = app
        .db
        .user_by_email("ops@acme.test")
        .await
        .unwrap()
        .expect("stored lower-case");
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(voxd::domain::password::verify(&user.password_hash, "long enough pass"));
    let out = with_stdin(
        &["user", "add", "--team", "acme", "ops@acme.test", "--password-stdin"],
        "long enough pass\n",
    );
    assert!(!out.status.success(), "the email is taken");
    let out = with_stdin(
        &["user", "add", "--team", "acme", "b@acme.test", "--password-stdin"],
        "short\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10"));
    assert!(!voxd(app, &["user", "add", "--team", "acme", "not-an-email"])
        .status
        .success());
    assert!(!voxd(app, &["user", "add", "--team", "nope", "c@acme.test"])
        .status
        .success());

    // No password given: one is generated and printed once, last.
    let out = stdout(&voxd(app, &["user", "add", "--team", "acme", "gen@acme.test"]));
    let generated = out.lines().last().unwrap().trim().to_owned();
    assert_eq!(generated.len(), 16, "{out}");
    let user = app.db.user_by_email("gen@acme.test").await.unwrap().unwrap();
    assert!(voxd::domain::password::verify(&user.password_hash, &generated));

    let listed = stdout(&voxd(app, &["user", "list", "--team", "acme"]));
    assert!(
        listed.contains("ops@acme.test") && listed.contains("gen@acme.test"),
        "{listed}"
    );
    assert!(!listed.contains("argon2"), "{listed}");

    let out = with_stdin(
        &["user", "set-password", "gen@acme.test", "--password-stdin"],
        "another long one\n",
    );
    stdout(&out);
    let user = app.db.user_by_email("gen@acme.test").await.unwrap().unwrap();
    assert!(voxd::domain::password::verify(&user.password_hash, "another long one"));
    stdout(&voxd(app, &["user", "remove", "gen@acme.test"]));
    assert!(app.db.user_by_email("gen@acme.test").await.unwrap().is_none());
    assert!(!voxd(app, &["user", "remove", "gen@acme.test"]).status.success());
}

/// `voxd trunk` and `voxd number --trunk / set-trunk`: the password is sealed, never printed.
async fn trunks_from_the_command_line(app: &TestApp) {
    let add = |args: &[&str], password: &str| voxd_with_stdin(app, args, password);
    let out = add(
        &[
            "trunk",
            "add",
            "--team",
            "acme",
            "carrier",
            "--uri",
            "sip:sip.example.net:5080",
            "--username",
            "acme1",
            "--password-stdin",
        ],
        "hunter2-trunk\n",
    );
    assert!(stdout(&out).contains("sip:sip.example.net:5080"));
    let trunk = app.db.trunk_by_name(app.team_id, "carrier").await.unwrap().unwrap();
    let sealed = trunk.password.clone().unwrap();
    assert!(!sealed.windows(13).any(|w| w == b"hunter2-trunk"), "stored sealed");
    assert_eq!((trunk.host.as_str(), trunk.port), ("sip.example.net", 5080));
    let listed = stdout(&voxd(app, &["trunk", "list", "--team", "acme"]));
    assert!(
        listed.contains("carrier") && listed.contains("set") && !listed.contains("hunter2"),
        "{listed}"
    );
    for bad in [
        vec![
            "trunk",
            "add",
            "--team",
            "acme",
            "carrier",
            "--uri",
            "sip:other.example.net",
        ],
        vec!["trunk", "add", "--team", "acme", "x", "--uri", "sip:host:notaport"],
        vec![
            "trunk",
            "add",
            "--team",
            "acme",
            "y",
            "--uri",
            "sip:h",
            "--transport",
            "tcp",
        ],
        vec!["trunk", "add", "--team", "nope", "z", "--uri", "sip:h"],
    ] {
        assert!(!voxd(app, &bad).status.success(), "{bad:?}");
    }
    // Port 5060 when left out.
    stdout(&voxd(
        app,
        &["trunk", "add", "--team", "acme", "pbx", "--uri", "sip:10.0.0.5"],
    ));
    assert_eq!(
        app.db.trunk_by_name(app.team_id, "pbx").await.unwrap().unwrap().port,
        5060
    );

    stdout(&voxd(
        app,
        &["number", "add", "--team", "acme", "0291234567", "--trunk", "carrier"],
    ));
    let on = app
        .db
        .trunk_for_number(app.team_id, "+61291234567")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on.name, "carrier");
    assert!(!voxd(
        app,
        &["number", "add", "--team", "acme", "0291234568", "--trunk", "nope"]
    )
    .status
    .success());
    assert!(
        app.db.numbers_by_value("+61291234568").await.unwrap().is_empty(),
        "nothing added"
    );
    let removed = voxd(app, &["trunk", "remove", "--team", "acme", "carrier"]);
    assert!(!removed.status.success(), "a trunk in use stays");
    stdout(&voxd(
        app,
        &["number", "set-trunk", "--team", "acme", "0291234567", "pbx"],
    ));
    assert_eq!(
        app.db
            .trunk_for_number(app.team_id, "+61291234567")
            .await
            .unwrap()
            .unwrap()
            .name,
        "pbx"
    );
    stdout(&voxd(
        app,
        &["number", "set-trunk", "--team", "acme", "0291234567", "--no-trunk"],
    ));
    assert!(app
        .db
        .trunk_for_number(app.team_id, "+61291234567")
        .await
        .unwrap()
        .is_none());
    stdout(&voxd(app, &["trunk", "remove", "--team", "acme", "carrier"]));
    assert!(app.db.trunk_by_name(app.team_id, "carrier").await.unwrap().is_none());
}

on_both_backends!(
    trunks_from_the_command_line,
    dashboard_users_from_the_command_line,
    operators_keep_a_do_not_call_list,
    operators_manage_scripts_automations_and_numbers,
    simulate_inbound_answers_with_the_numbers_script,
    teams_and_keys_from_the_command_line,
    serve_runs_and_stops_gracefully,
    script_import_stores_valid_scripts_only,
    automation_import_prints_the_hook_once,
);

/// `chat --output json` prints only one JSON document: transcript, path, outcome, end reason and
/// the analysis with the collected data.
#[test]
fn chat_prints_the_result_as_json() {
    let script = format!("{}/examples/scripts/appraisal-booking.yaml", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["chat", "--script", &script, "--first-name", "Ana", "--output", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Yes please\nYes that suits me\nNo, that's all\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(doc["end_reason"], "ai hangup", "{doc}");
    assert_eq!(doc["outcome"], "success", "{doc}");
    let path: Vec<&str> = doc["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(path.first(), Some(&"intro"), "{doc}");
    let turns = doc["transcript"].as_array().unwrap();
    assert!(turns.len() >= 6, "{doc}");
    assert_eq!(turns[0]["role"], "assistant");
    assert!(turns[0]["text"].as_str().unwrap().contains("Hi Ana"));
    assert!(turns.iter().any(|t| t["role"] == "user" && t["text"] == "Yes please"));
    assert_eq!(doc["analysis"]["success_evaluation"], "successful", "{doc}");
    assert!(doc["analysis"]["data"].is_object(), "{doc}");
    assert!(!doc["analysis"]["summary"].as_str().unwrap().is_empty());
}

#[test]
fn chat_reads_callee_lines_from_a_pipe() {
    let script = format!("{}/examples/scripts/appraisal-booking.yaml", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args([
            "chat",
            "--script",
            &script,
            "--first-name",
            "Ana",
            "--email",
            "ana@example.com",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Yes please\nYes that suits me\nNo, that's all\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("assistant › Hi Ana, it's Harbour Realty."), "{text}");
    assert!(text.contains("I'll email the details to ana@example.com"), "{text}");
    assert!(text.contains("call ended: ai hangup"), "{text}");
    assert!(
        text.contains("Analysis (rules brain)") && text.contains("success: successful"),
        "{text}"
    );
}

#[test]
fn default_database_is_created_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["team", "create", "first"])
        .env_remove("VOXD_DATABASE_URL")
        .env("VOXD_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(data.join("voxd.db").exists());
}

#[test]
fn config_file_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("voxd.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", dir.path().join("d").display())).unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["migrate", "--config", config.to_str().unwrap()])
        .env_remove("VOXD_DATABASE_URL")
        .env_remove("VOXD_DATA_DIR")
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(dir.path().join("d/voxd.db").exists());
    std::fs::write(&config, "listen = 5\n").unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["migrate", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("config file"));
}

/// `team set-limits` changes only the limits it is given; `default` returns one to the server's.
#[test]
fn set_limits_changes_only_what_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_voxd"))
            .args(args)
            .env(
                "VOXD_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("v.db").display()),
            )
            .env_remove("VOXD_CONFIG")
            .output()
            .unwrap()
    };
    stdout(&run(&[
        "team",
        "create",
        "t",
        "--requests-per-second",
        "5",
        "--max-concurrent-calls",
        "3",
    ]));
    stdout(&run(&["team", "set-limits", "t", "--max-concurrent-calls", "9"]));
    let shown = stdout(&run(&["team", "show", "t"]));
    assert!(
        shown.contains("requests_per_second: 5") && shown.contains("max_concurrent_calls: 9"),
        "{shown}"
    );
    stdout(&run(&["team", "set-limits", "t", "--requests-per-second", "default"]));
    let shown = stdout(&run(&["team", "show", "t"]));
    assert!(
        shown.contains("requests_per_second: server default") && shown.contains("max_concurrent_calls: 9"),
        "{shown}"
    );
    assert!(stderr(&run(&["team", "set-limits", "t"])).contains("give --requests-per-second"));
    assert!(stderr(&run(&["team", "set-limits", "t", "--max-concurrent-calls", "lots"])).contains("`default`"));
}

/// A brain that cannot work says so at start and exits non-zero; a listen address without a port
/// is refused with an example.
#[test]
fn settings_that_cannot_work_fail_at_start() {
    let script = format!("{}/examples/scripts/appraisal-booking.yaml", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["chat", "--script", &script, "--brain", "openai"])
        .env_remove("VOXD_OPENAI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("VOXD_OPENAI_BASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("VOXD_OPENAI_API_KEY"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["serve", "--listen", "localhost"])
        .env_remove("VOXD_CONFIG")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("localhost:8080"));
}
