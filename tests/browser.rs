//! The API reference as a reader sees it: `/docs` rendered in Debian's chromium (playwright-core),
//! everything served by voxd itself.

mod common;

use common::{browser_available, run_browser_script, serve_in_process, Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_render_the_request_fields_of_create_phone_call() {
    if !browser_available() {
        return;
    }
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    let addr = serve_in_process(&app).await;
    let (report, ok) = run_browser_script("docs.mjs", &[&format!("http://{addr}")]).await;
    assert!(ok, "the page did not render: {report}");
    assert_eq!(report["title"], "voxd API reference");
    let text = report["operation_text"].as_str().unwrap();
    for field in [
        "from_number",
        "script_id",
        "contact",
        "scheduled_time",
        "retry_policy",
        "calling_window",
    ] {
        assert!(
            text.contains(field),
            "create-phone-call does not show `{field}`:\n{text}"
        );
    }
    // Parameters' descriptions come through as text, not raw markdown.
    assert!(text.contains("voxd number add"), "{text}");
    assert!(!text.contains("`voxd number add`"), "markdown shown raw:\n{text}");
    assert!(
        report["try_it"].as_u64().unwrap() >= 1,
        "no Test Request button: {report}"
    );
    assert_eq!(
        report["external_requests"],
        serde_json::json!([]),
        "the page reached outside voxd"
    );
    assert_eq!(report["failed_requests"], serde_json::json!([]));
    app.cleanup().await;
}
