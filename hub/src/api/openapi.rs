//! The OpenAPI document's frame (title, bearer scheme) and the route that
//! serves it; the paths themselves come from each handler's `#[utoipa::path]`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Switchyard hub admin API",
        description = "JSON over HTTPS with the hub's own certificate. Every route under /api/v1 but the webhook needs a bearer token whose role allows it; errors are {\"error\": \"...\"}."
    ),
    modifiers(&BearerAuth)
)]
pub(super) struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The served OpenAPI document, rendered once.
#[derive(Clone)]
pub(super) struct OpenApiDocument(pub(super) Arc<String>);

#[utoipa::path(get, path = "/openapi.json", tag = "probes", summary = "This description of the admin API", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub(super) async fn openapi_json(
    axum::Extension(document): axum::Extension<OpenApiDocument>,
) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.0.as_str().to_owned(),
    )
        .into_response()
}
