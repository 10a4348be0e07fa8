"""OpenAPI: what every operation really answers, added in one place.

* `BearerScheme` tells drf-spectacular about `BearerAuthentication`, so an
  operation's `security` follows its view (the token endpoints are public).
* `AutoSchema` documents a request body on DELETE where a view takes one
  (`DELETE /v1/auth/revoke`).
* Views declare their own extra errors as `OpenApiResponse(description=...)`;
  the hook gives them the envelope's schema.
* `add_common_responses` (a post-processing hook) adds the error envelope for
  every error the pipeline can answer, `X-Request-Id` on every response, the
  rate-limit headers on authenticated operations, `Retry-After` on 429, and
  `Idempotency-Key` with its 409/422 on authenticated POSTs.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.renderers import OpenApiJsonRenderer2
from rest_framework.renderers import JSONRenderer

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message", "param", "request_id"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "invalid_request_error",
                        "authentication_error",
                        "permission_error",
                        "rate_limit_error",
                        "api_error",
                    ],
                },
                "code": {"type": "string", "description": "Stable; switch on it.", "example": "bot_not_found"},
                "message": {"type": "string", "description": "For humans; may change."},
                "param": {"type": "string", "nullable": True, "description": "The parameter at fault, if any."},
                "request_id": {"type": "string", "example": "req_3kTn9Qa0Zx1Lm8Pq2Rs4Tu6V"},
            },
        }
    },
}

REQUEST_ID_HEADER = {
    "X-Request-Id": {"description": "This request's id; quote it to support.", "schema": {"type": "string"}}
}
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests allowed per minute for the tenant.", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the current window.", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": {"type": "integer"}},
}
RETRY_AFTER_HEADER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response to an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

AUTHENTICATED_ERRORS = {
    "400": "Invalid request: validation (`param` names the field), malformed JSON (`invalid_json`), bad cursor.",
    "401": "Missing, invalid, expired or revoked credential, or a bad request signature. "
    "Sent with `WWW-Authenticate: Bearer`.",
    "403": "`plan_upgrade_required` (plan below Legend), `tenant_suspended`, or `plan_limit_reached`; with a "
    "publishable key (`pk_live_`): `publishable_key_not_allowed` (not an endpoint of the chat widget), "
    "`origin_not_allowed`, `identity_verification_required`, `invalid_user_hash`, `identity_verification_off`.",
    "429": "Rate limit exceeded (`rate_limit_exceeded`); see `Retry-After`.",
    "500": "Server error (`internal_error`); quote the request id.",
}
PUBLIC_ERRORS = {
    "400": "Invalid request (`param` names the field) or malformed JSON.",
    "401": "Wrong credentials (`invalid_api_key`, `invalid_credentials`, `invalid_refresh_token`, ...). "
    "Sent with `WWW-Authenticate: Bearer`.",
    "403": "`plan_upgrade_required` or `tenant_suspended`.",
    "429": "Too many failed attempts from this address (`too_many_failed_attempts`); see `Retry-After`.",
    "500": "Server error (`internal_error`); quote the request id.",
}
NOT_FOUND = "No such object in this tenant (another tenant's id answers the same)."
BODY_ERRORS = {
    "413": "The body is larger than the limit (`request_too_large`).",
    "415": "The body is not `application/json` (`unsupported_media_type`).",
}
IDEMPOTENCY_ERRORS = {
    "409": "A request with the same Idempotency-Key is still in progress (`idempotency_request_in_progress`), "
    "or succeeded with a secret that is not replayed (`idempotency_response_withheld`).",
    "422": "The Idempotency-Key was used with a different request (`idempotency_key_reused`).",
}
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key to retry safely: the first response is replayed for 24 h.",
    "schema": {"type": "string", "maxLength": 255},
}


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "bothero.api.authentication.BearerAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`bh_live_...`) or an access token from `/v1/auth/token` (`bhat_...`).",
        }


class AutoSchema(SpectacularAutoSchema):
    def _get_request_body(self, direction="request"):
        # drf-spectacular documents bodies only for POST/PUT/PATCH; a view opts in for DELETE.
        if self.method == "DELETE" and getattr(self.view, "delete_takes_body", False):
            self.method = "POST"
            try:
                return super()._get_request_body(direction)
            finally:
                self.method = "DELETE"
        return super()._get_request_body(direction)


def _error_response(description: str, headers: dict) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        "headers": dict(headers),
    }


def add_common_responses(result, generator, request, public):
    """Post-processing hook: every operation documents the error envelope and our headers."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            is_public = not operation.get("security")
            responses = operation["responses"]
            errors = dict(PUBLIC_ERRORS if is_public else AUTHENTICATED_ERRORS)
            if "{" in path:
                errors["404"] = NOT_FOUND
            if "requestBody" in operation:
                errors.update(BODY_ERRORS)
            if method == "post" and not is_public:
                errors.update(IDEMPOTENCY_ERRORS)
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(dict(IDEMPOTENCY_PARAMETER))
            for code, description in errors.items():
                responses.setdefault(code, _error_response(description, {}))
            for code, response in responses.items():
                if code[0] in "45" and "content" not in response:
                    # A view declared the error with a description only: it has the envelope's shape.
                    response["content"] = _error_response("", {})["content"]
                headers = response.setdefault("headers", {})
                headers.update(REQUEST_ID_HEADER)
                if not is_public and code != "401":
                    headers.update(RATE_LIMIT_HEADERS)
                if code == "429":
                    headers.update(RETRY_AFTER_HEADER)
                if method == "post" and not is_public and code.startswith("2"):
                    headers.update(REPLAYED_HEADER)
    return result


class CompactOpenApiJsonRenderer(OpenApiJsonRenderer2):
    """`/v1/openapi.json` without the pretty-printing drf-spectacular adds (a third of the size on the wire);
    a client that wants it indented asks with `Accept: application/json; indent=2`."""

    def get_indent(self, accepted_media_type, renderer_context):
        return JSONRenderer.get_indent(self, accepted_media_type, renderer_context)
