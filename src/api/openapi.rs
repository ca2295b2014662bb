//! Our own OpenAPI 3.1 document, generated from the handlers' annotations, and the interactive
//! reference page that renders it (its renderer is embedded: the page works on an offline install).

use axum::{
    http::header,
    response::{Html, IntoResponse},
    Json,
};
use utoipa::{
    openapi::{
        path::{Operation, PathItem},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        ContentBuilder, OpenApi as Spec, Ref, RefOr, Response, ResponseBuilder,
    },
    Modify, OpenApi,
};

use super::{
    automations, calls, campaigns, contacts, do_not_call, error::ErrorBody, export, hooks, lists, numbers, objects,
    scripts, trunks, twilio, voice, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "voxd API",
        description = "Self-hosted, Voxworks-compatible voice-calling API. Every operation except \
            health and this document needs `Authorization: Bearer <API key>`. Errors always come as \
            `{\"success\": false, \"message\": ..., \"code\": ...}`. Authenticated responses carry \
            `X-RateLimit-Limit` and `X-RateLimit-Remaining`; a 429 carries `Retry-After` (seconds). \
            Creating POSTs accept `Idempotency-Key` (or `X-Idempotency-Key`): a retry with the same key \
            and body within 24 h replays the first response with `Idempotent-Replayed: true`; the same \
            key with another body is a 409. Every response has an `X-Request-Id`. Operations marked \
            (extension) are voxd's additions to the Voxworks contract. The web dashboard at `/` uses \
            this API with its sign-in session instead of a key: the session cookie counts only with \
            the session's CSRF token in `X-CSRF-Token`, and without it the answer is 403 \
            (`code: forbidden`).",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        super::health,
        contacts::create, contacts::get, contacts::list, contacts::update, contacts::delete, export::contacts,
        lists::create, lists::add_contacts, lists::list, lists::get, lists::rename, lists::delete, lists::remove_member,
        lists::import,
        objects::create_type, objects::type_by_name, objects::upsert, objects::link, objects::get, objects::list,
        scripts::create, scripts::list, scripts::get, scripts::replace, scripts::delete,
        scripts::versions, scripts::version, scripts::restore, scripts::test,
        calls::create_phone_call, calls::get_call, calls::list_calls, export::calls, calls::cancel_call, calls::reschedule_call,
        calls::get_call_result, calls::call_events, calls::create_web_call, calls::end_web_call, voice::recording,
        automations::create, automations::list, automations::get, automations::replace, automations::delete,
        automations::enable, automations::disable, automations::rotate_hook,
        automations::list_executions, automations::get_execution, automations::retry_execution,
        numbers::create, numbers::list, numbers::get, numbers::update, numbers::delete,
        trunks::create, trunks::list, trunks::get, trunks::delete,
        twilio::get, twilio::set, twilio::delete,
        campaigns::create, campaigns::list, campaigns::get, campaigns::pause, campaigns::resume,
        campaigns::cancel, campaigns::log,
        do_not_call::add, do_not_call::list, do_not_call::get, do_not_call::remove, do_not_call::import,
        hooks::receive,
        webhooks::create, webhooks::list, webhooks::get, webhooks::replace, webhooks::delete, webhooks::rotate_secret,
        webhooks::list_deliveries, webhooks::get_delivery, webhooks::redeliver,
    ),
    components(schemas(ErrorBody, super::pagination::SortOrder)),
    modifiers(&Conventions),
    tags(
        (name = "Health"), (name = "Contacts"), (name = "Lists"), (name = "Objects"), (name = "Calls"), (name = "Scripts"),
        (name = "Phone numbers"), (name = "SIP trunks"), (name = "Twilio"), (name = "Campaigns"), (name = "Do not call"), (name = "Automations"), (name = "Webhooks"),
    ),
)]
pub struct ApiDoc;

/// Documented aliases: (alias path, canonical path).
const ALIASES: [(&str, &str); 3] = [
    (
        "/api/v1/add-contact-to-list/{list_id}",
        "/api/v1/add-contacts-to-list/{list_id}",
    ),
    ("/api/v1/create-object-type", "/api/v1/object-types"),
    (
        "/api/v1/link-object-to-contact/{object_id}",
        "/api/v1/link-contact-to-object/{object_id}",
    ),
];

/// Adds what every operation shares: bearer auth, the error responses the middleware can produce,
/// and the alias routes.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "BearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API key from `voxd key create`"))
                    .build(),
            ),
        );
        spec.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "BearerAuth",
            Vec::<String>::new(),
        )]);
        for (path, item) in spec.paths.paths.iter_mut() {
            for op in operations(item) {
                let public = op.security.as_ref().is_some_and(|s| !s.is_empty());
                add_errors(op, !public && path != "/api/v1/health");
            }
        }
        for (alias, canonical) in ALIASES {
            if let Some(item) = spec.paths.paths.get(canonical).cloned() {
                let mut item = item;
                for op in operations(&mut item) {
                    op.operation_id = op.operation_id.take().map(|id| format!("{id}Alias"));
                    op.summary = op.summary.take().map(|s| format!("{s} (alias of {canonical})"));
                }
                spec.paths.paths.insert(alias.to_owned(), item);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .filter_map(|o| o.as_mut())
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

fn add_errors(op: &mut Operation, authenticated: bool) {
    let has_body = op.request_body.is_some();
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params
        .iter()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path));
    let has_query = params
        .iter()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    let mut add = |code: &str, description: &str| {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| error_response(description));
    };
    if authenticated {
        add("401", "Missing, invalid or revoked API key.");
        add(
            "429",
            "The team's rate limit is exceeded, or this address failed authentication too often; see Retry-After.",
        );
        add(
            "500",
            "Internal error (details are in the server log under the request id).",
        );
    }
    if has_body || has_query {
        add("400", "Bad input: the message names the field and the reason.");
    }
    if has_body {
        add(
            "409",
            "Idempotency-Key reused with a different request, or still in progress.",
        );
        add("413", "Request body too large.");
        add("415", "A Content-Type other than JSON (none at all is read as JSON).");
    }
    if has_path {
        add("404", "Not found (unknown or malformed id, or another team's).");
    }
}

pub fn document() -> Spec {
    ApiDoc::openapi()
}

pub async fn spec() -> impl IntoResponse {
    Json(document())
}

/// The interactive reference: Scalar's renderer (vendored from npm, see `assets/vendor/scalar`)
/// over the served document. Everything comes from this server: no fonts, telemetry or proxy from
/// elsewhere, so the page works on an offline install.
pub async fn docs() -> impl IntoResponse {
    const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>voxd API reference</title>
</head>
<body>
<noscript>This reference needs JavaScript. The document itself is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</noscript>
<div id="app"></div>
<script src="/docs/scalar.js"></script>
<script>
Scalar.createApiReference('#app', {
  url: '/api/v1/openapi.json',
  withDefaultFonts: false,
  telemetry: false,
  showDeveloperTools: 'never',
  agent: { disabled: true },
  hideClientButton: true, // its button opens Scalar's hosted client; the in-page "Test Request" stays
  documentDownloadType: 'json',
});
</script>
</body>
</html>
"#;
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE))
}

/// The renderer's script, compiled into the binary.
pub async fn docs_script() -> impl IntoResponse {
    const SCRIPT: &[u8] = include_bytes!("../../assets/vendor/scalar/standalone.js");
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Changes only with the binary; an hour spares reloads without outliving an upgrade long.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
}
