//! The OpenAPI document of `/api/v1` and of ConTest's API at the root,
//! generated from the handlers' annotations, served at
//! `/api/v1/openapi.json`, with Swagger UI at `/api/docs` (its assets are
//! vendored into the binary: nothing is downloaded at build or run time).
//!
//! Every route the router serves behind the token is in it
//! ([`crate::api::served_paths`]; `tests/openapi.rs` holds the two
//! together), every operation has a summary, and every body a schema.

use std::collections::BTreeMap;

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::response::{ResponseBuilder, Responses};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(title = "prova", description = "Run end-to-end test jobs (ConTest descriptors) and read what they proved."),
    paths(
        crate::api::submit,
        crate::api::list,
        crate::api::status,
        crate::api::report,
        crate::api::junit,
        crate::artifacts::list,
        crate::artifacts::download,
        crate::api::cancel,
        crate::api::pause,
        crate::api::resume,
        crate::api::retry,
        crate::api::events,
        crate::api::version,
        json,
        crate::audit_api::post_events,
        crate::audit_api::hits,
        crate::audit_api::report,
        crate::history_api::history,
        crate::history_api::compare,
        crate::contest::start,
        crate::contest::status,
        crate::contest::stop,
        crate::contest::retry,
        crate::contest::list,
        crate::contest::version,
    ),
    components(schemas(crate::error::ErrorBody, crate::contest::ContestError)),
    modifiers(&BearerAuth, &CommonErrors),
    tags(
        (name = "jobs", description = "Submit, watch and steer jobs"),
        (name = "audit", description = "The live audit sink: kube-apiserver's audit webhook in, endpoint hits and coverage out"),
        (name = "history", description = "A test's history across jobs, and two jobs compared"),
        (name = "contest", description = "ConTest's API at the root paths, with its form-encoded requests and its answer envelope, so contestcli and ConTest scripts work unchanged"),
        (name = "server", description = "This server: its version and this document"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The answers every operation can give, added to each rather than
/// repeated in every annotation: 401 (the token), 500 (an internal fault,
/// opaque), 408 where the 30 s request timeout applies, and the plain-text
/// rejections of ConTest's forms.
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let contest = !path.starts_with("/api/");
            // The event stream lives as long as its job: no timeout there.
            let timed = !contest && !path.ends_with("/events");
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                add(
                    &mut op.responses,
                    "401",
                    json_response(
                        "Missing or wrong bearer token (when the server has one)",
                        "ErrorBody",
                    ),
                );
                let internal = if contest {
                    json_response(
                        "An internal fault: Msg is opaque, with an id to find the details in the server log",
                        "ContestError",
                    )
                } else {
                    json_response(
                        "An internal fault: Error is opaque, with an id to find the details in the server log",
                        "ErrorBody",
                    )
                };
                add(&mut op.responses, "500", internal);
                if contest && op.request_body.is_some() {
                    // axum's Form rejections, before the handler: plain text.
                    add(
                        &mut op.responses,
                        "413",
                        text_response("Body larger than --max-body"),
                    );
                    add(
                        &mut op.responses,
                        "415",
                        text_response("The body is not application/x-www-form-urlencoded"),
                    );
                    add(
                        &mut op.responses,
                        "422",
                        text_response("A form that does not parse (a field given twice)"),
                    );
                }
                if timed {
                    add(
                        &mut op.responses,
                        "408",
                        ResponseBuilder::new()
                            .description("The request took longer than 30 s (no body)")
                            .build()
                            .into(),
                    );
                }
            }
        }
    }
}

fn json_response(description: &str, schema: &str) -> RefOr<utoipa::openapi::response::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
        .into()
}

fn text_response(description: &str) -> RefOr<utoipa::openapi::response::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "text/plain",
            ContentBuilder::new()
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::Type::String),
                ))
                .build(),
        )
        .build()
        .into()
}

/// Adds a response unless the operation documents that status itself.
fn add(
    responses: &mut Responses,
    status: &str,
    response: RefOr<utoipa::openapi::response::Response>,
) {
    responses
        .responses
        .entry(status.to_string())
        .or_insert(response);
}

/// The OpenAPI document (3.1) as `GET /api/v1/openapi.json` answers it;
/// its parts are as the OpenAPI specification defines them.
#[derive(utoipa::ToSchema)]
pub struct OpenApiDocument {
    /// The OpenAPI version, `3.1.0`.
    pub openapi: String,
    /// Title, description and prova's version.
    pub info: BTreeMap<String, serde_json::Value>,
    /// Every operation, by path.
    pub paths: BTreeMap<String, serde_json::Value>,
    /// Schemas and the security scheme.
    pub components: Option<BTreeMap<String, serde_json::Value>>,
    /// The bearer token, required on every operation.
    pub security: Option<Vec<BTreeMap<String, serde_json::Value>>>,
    /// The operations' groups.
    pub tags: Option<Vec<BTreeMap<String, serde_json::Value>>>,
}

/// The OpenAPI document.
///
/// This document: every operation of `/api/v1` and of ConTest's API,
/// generated from the code. Swagger UI shows it at `/api/docs`.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "getOpenApi", tag = "server",
    responses((status = 200, body = OpenApiDocument, description = "The OpenAPI 3.1 document")))]
pub async fn json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Swagger UI at `/api/docs`, reading the document above.
pub fn ui() -> SwaggerUi {
    SwaggerUi::new("/api/docs").url("/api/docs/openapi.json", document())
}
