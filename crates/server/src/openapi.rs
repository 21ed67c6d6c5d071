//! `GET /api/v1/openapi.json`, built from the route table ([`crate::ROUTES`]).

use axum::Json;
use serde_json::{Map, Value, json};

use crate::ROUTES;

/// The OpenAPI 3.1 document for every route the router serves.
pub fn build() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut responses = Map::new();
        let (code, description) = route.ok;
        responses.insert(code.to_string(), json!({ "description": description }));
        let mut errors: Vec<(u16, &str)> = Vec::new();
        if route.role.is_some() {
            errors.push((401, "Missing or invalid bearer token"));
        }
        if route.path.contains("{name}") {
            errors.push((404, "No app has that name"));
        }
        errors.push((421, "The Host is not a name this server answers to"));
        if !route.path.starts_with("/hooks/") {
            errors.push((
                403,
                "The Origin is not this server (or the token's role is too low)",
            ));
        }
        if route.method == "post" && route.path.starts_with("/api/") {
            errors.push((
                415,
                "Neither `Content-Type: application/json` nor an `X-Driftless-Request` header",
            ));
            errors.push((400, "Bad request body or query"));
            errors.push((422, "The step failed; detail says what and where"));
        }
        if route.path.starts_with("/hooks/") {
            errors.push((400, "The body is not JSON"));
            errors.push((401, "Bad or missing signature"));
            errors.push((404, "Unknown or unconfigured provider"));
            errors.push((413, "Body larger than 1 MiB"));
        }
        for (code, description) in errors {
            responses.insert(
                code.to_string(),
                json!({
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }),
            );
        }
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = json!({
            "summary": route.summary,
            "parameters": parameters,
            "responses": responses,
            "x-driftless-role": route.role.map_or("open", |r| r.as_str()),
        });
        operation["security"] = match route.role {
            Some(_) => json!([{"bearer": []}]),
            None => json!([]),
        };
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[route.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "driftless API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Roles: viewer reads; operator also syncs, refreshes, rolls back, suspends and resumes; admin also reads the audit log. Without configured tokens the API is open on loopback."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}
                }
            }
        }
    })
}

pub(crate) async fn document() -> Json<Value> {
    Json(build())
}
