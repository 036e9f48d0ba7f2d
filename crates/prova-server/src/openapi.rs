//! The OpenAPI document of `/api/v1`, generated from the handlers'
//! annotations, served at `/api/v1/openapi.json`, with Swagger UI at
//! `/api/docs` (its assets are vendored into the binary: nothing is
//! downloaded at build or run time).

use utoipa::OpenApi;
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
        crate::audit_api::post_events,
        crate::audit_api::hits,
        crate::audit_api::report,
        crate::history_api::history,
        crate::history_api::compare,
    ),
    modifiers(&BearerAuth),
    tags((name = "jobs", description = "Submit, watch and steer jobs"), (name = "audit", description = "The live audit sink: kube-apiserver's audit webhook in, endpoint hits and coverage out"), (name = "history", description = "A test's history across jobs, and two jobs compared"), (name = "server"))
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

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Swagger UI at `/api/docs`, reading the document above.
pub fn ui() -> SwaggerUi {
    SwaggerUi::new("/api/docs").url("/api/docs/openapi.json", document())
}
