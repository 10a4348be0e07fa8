"""OpenAPI additions shared by every operation: the error envelope, rate-limit headers, idempotency."""

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
                "code": {"type": "string", "example": "bot_not_found"},
                "message": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "request_id": {"type": "string", "example": "req_3kTn9..."},
            },
        }
    },
}

RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests allowed per minute for the tenant.", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the current window.", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": {"type": "integer"}},
    "X-Request-Id": {"description": "This request's id; quote it to support.", "schema": {"type": "string"}},
}

COMMON_ERRORS = {
    "400": "Invalid request (the envelope's `param` names the field).",
    "401": "Missing, invalid, expired or revoked credential.",
    "403": "Plan without API access (`plan_upgrade_required`), suspended tenant or plan limit reached.",
    "404": "No such object in this tenant.",
    "429": "Rate limit exceeded; see `Retry-After`.",
    "500": "Server error.",
}
PUBLIC_ERRORS = {"400", "429", "500"}


def add_common_responses(result, generator, request, public):
    """Post-processing hook: every operation documents the error envelope and our headers."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error_ref = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            is_public = operation.get("security") == [] or {} in operation.get("security", [])
            for code, description in COMMON_ERRORS.items():
                if is_public and code not in PUBLIC_ERRORS:
                    continue
                operation["responses"].setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": error_ref}}}
                )
            if method == "post":
                operation["responses"].setdefault(
                    "409",
                    {
                        "description": "A request with the same Idempotency-Key is still in progress.",
                        "content": {"application/json": {"schema": error_ref}},
                    },
                )
                operation["responses"].setdefault(
                    "422",
                    {
                        "description": "Idempotency-Key reused with a different request.",
                        "content": {"application/json": {"schema": error_ref}},
                    },
                )
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "Replays the first response for 24 h when the same request is retried.",
                            "schema": {"type": "string", "maxLength": 255},
                        }
                    )
            for code, response in operation["responses"].items():
                if not is_public or code.startswith("4") or code.startswith("2"):
                    response.setdefault("headers", {}).update(
                        {k: v for k, v in RATE_LIMIT_HEADERS.items() if not is_public or k == "X-Request-Id"}
                    )
    return result
