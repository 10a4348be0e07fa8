"""OpenAPI: what every operation really answers, added in one place.

* `BearerScheme` tells drf-spectacular about `BearerAuthentication`, so an
  operation's `security` follows its view (the token endpoints are public).
* `AutoSchema` documents a request body on DELETE where a view takes one
  (`DELETE /v1/auth/revoke`).
* Views declare their own extra errors as `OpenApiResponse(description=...)`;
  the hook gives them the envelope's schema.
* `StrictSerializerExtension`: a `StrictSerializer` refuses unknown fields, so
  its request schema says `additionalProperties: false`.
* `add_common_responses` (a post-processing hook) adds the error envelope for
  every error the pipeline can answer, `X-Request-Id` on every response, the
  rate-limit headers on authenticated operations, `Retry-After` on 429 and 503,
  `Idempotency-Key` with its 409/422 on authenticated POSTs, and 404 on every
  operation that names a bot in its query or body (another tenant's bot is a 404).

The document is checked against a live server by schemathesis
(`bothero/tests/test_schemathesis.py`): it must be exactly as strict as the server.
"""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.renderers import OpenApiJsonRenderer2
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer

from bothero.api.pagination import CURSOR_SCHEMA, MAX_LIMIT
from bothero.api.serializers import NOT_BLANK_PATTERN
from bothero.idempotency import KEY_PATTERN, MAX_KEY_LENGTH
from bothero.ids import PUBLIC_ID_RANDOM_LENGTH

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
    "`origin_not_allowed`, `identity_verification_required`, `invalid_user_hash`, `identity_verification_off`; "
    "`role_required` (managing API keys or webhooks with a member's access token).",
    "429": "Rate limit exceeded (`rate_limit_exceeded`); see `Retry-After`.",
    "500": "Server error (`internal_error`); quote the request id.",
    "503": "A dependency (the database, Redis) is unavailable (`service_unavailable`); see `Retry-After`.",
}
PUBLIC_ERRORS = {
    "400": "Invalid request (`param` names the field) or malformed JSON.",
    "401": "Wrong credentials (`invalid_api_key`, `invalid_credentials`, `invalid_refresh_token`, ...). "
    "Sent with `WWW-Authenticate: Bearer`.",
    "403": "`plan_upgrade_required` or `tenant_suspended`.",
    "429": "Too many failed attempts from this address (`too_many_failed_attempts`); see `Retry-After`.",
    "500": "Server error (`internal_error`); quote the request id.",
    "503": "A dependency (the database, Redis) is unavailable (`service_unavailable`); see `Retry-After`.",
}
NOT_FOUND = "No such object in this tenant (another tenant's id answers the same)."
BOT_NOT_FOUND = "No such bot in this tenant (`bot_not_found`; another tenant's bot answers the same)."
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
    "description": "Send the same key to retry safely: the first response is replayed for 24 h. "
    "A different request under the same key is refused (422 `idempotency_key_reused`): use a new key "
    "(a UUID, say) for each new request.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN},
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


def public_id_schema(prefix: str) -> dict:
    return {"type": "string", "pattern": f"^{prefix}_[0-9A-Za-z]{{{PUBLIC_ID_RANDOM_LENGTH}}}$"}


# Path parameters by (the path segment before them, their name): the id's prefix.
PATH_ID_PREFIXES = {
    ("bots", "id"): "bot",
    ("models", "id"): "bot",
    ("conversations", "id"): "conv",
    ("messages", "message_id"): "msg",
    ("documents", "id"): "doc",
    ("knowledge", "id"): "doc",
    ("webhooks", "id"): "wh",
    ("deliveries", "delivery_id"): "dlv",
    ("keys", "id"): "key",
    ("answers", "id"): "ans",
    ("sources", "id"): "src",
}
# Ids named in query strings and JSON bodies.
FIELD_ID_PREFIXES = {"bot_id": "bot", "conversation_id": "conv"}


class StrictCharFieldExtension(OpenApiSerializerFieldExtension):
    """A trimmed, non-blank string holds something other than white space: say so (NOT_BLANK_PATTERN)."""

    target_class = "bothero.api.serializers.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request" and self.target.trim_whitespace and not self.target.allow_blank:
            schema.setdefault("pattern", NOT_BLANK_PATTERN)
        return schema


class StrictSerializerExtension(OpenApiSerializerExtension):
    target_class = "bothero.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "request":
            schema["additionalProperties"] = False
            # "One of these sets of fields, not empty" (checked in the serializer's validate()).
            alternatives = getattr(self.target, "openapi_any_of_required", ())
            if alternatives:
                schema["anyOf"] = [
                    {"required": list(names), "properties": {name: {"minLength": 1} for name in names}}
                    for names in alternatives
                ]
        return schema


# Documented on the operations a publishable key may call (their views' `publishable_key_actions`).
PUBLISHABLE_KEY_HEADERS = [
    OpenApiParameter(
        "X-BotHero-Visitor",
        str,
        OpenApiParameter.HEADER,
        description="With a publishable key (required): the visitor's random id, 16–64 characters of "
        "[A-Za-z0-9_-]; it scopes the conversations the visitor may see.",
    ),
    OpenApiParameter(
        "X-BotHero-User-Id",
        str,
        OpenApiParameter.HEADER,
        description="With a publishable key that verifies identities: the signed-in user's id.",
    ),
    OpenApiParameter(
        "X-BotHero-User-Hash",
        str,
        OpenApiParameter.HEADER,
        description="hex HMAC-SHA256(identity_secret, user id), computed by the customer's server.",
    ),
]


class AutoSchema(SpectacularAutoSchema):
    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        action = getattr(self.view, "action", None) or self.method.lower()
        if action in getattr(self.view, "publishable_key_actions", ()):
            parameters = [*parameters, *PUBLISHABLE_KEY_HEADERS]
        return parameters

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


def _resolve(schema: dict, components: dict) -> dict:
    ref = schema.get("$ref", "")
    return components.get(ref.rsplit("/", 1)[-1], {}) if ref else schema


def _body_names_a_bot(operation: dict, components: dict) -> bool:
    """Whether any request body shape of the operation names bots (`bot_id`, `bot_ids`, OpenAI's `model`)."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        body = _resolve(media.get("schema", {}), components)
        for shape in [body, *body.get("oneOf", []), *body.get("anyOf", [])]:
            properties = _resolve(shape, components).get("properties", {})
            if (
                "bot_id" in properties
                or "bot_ids" in properties
                or ("model" in properties and "messages" in properties)
            ):
                return True
    return False


def _precise_parameters(path: str, operation: dict) -> None:
    """Ids, cursors and limits as the server checks them."""
    segments = path.strip("/").split("/")
    for parameter in operation.get("parameters", []):
        name, location = parameter.get("name"), parameter.get("in")
        if location == "path":
            before = segments[segments.index(f"{{{name}}}") - 1]
            prefix = PATH_ID_PREFIXES.get((before, name))
            if prefix:
                parameter["schema"] = public_id_schema(prefix)
        elif location == "query" and name in FIELD_ID_PREFIXES:
            parameter["schema"] = public_id_schema(FIELD_ID_PREFIXES[name])
        elif location == "query" and name == "cursor":
            parameter["schema"] = dict(CURSOR_SCHEMA)
        elif location == "query" and name == "limit":
            parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}


def _precise_request_bodies(components: dict) -> None:
    """Ids in request bodies (`bot_id`, `conversation_id`, OpenAI's `model`) carry their pattern."""
    for name, component in components.items():
        if not name.endswith("Request") or not isinstance(component.get("properties"), dict):
            continue
        properties = component["properties"]
        for field, prefix in FIELD_ID_PREFIXES.items():
            if properties.get(field, {}).get("type") == "string":
                properties[field] = {**properties[field], **public_id_schema(prefix)}
            plural = properties.get(f"{field}s", {})
            if plural.get("type") == "array" and plural.get("items", {}).get("type") == "string":
                plural["items"] = {**plural["items"], **public_id_schema(prefix)}
        if "messages" in properties and properties.get("model", {}).get("type") == "string":
            properties["model"] = {**properties["model"], **public_id_schema("bot")}


def _body_is_required(operation: dict, components: dict) -> bool:
    """A body is required when every shape it may take has a required field (an absent body reads as `{}`)."""
    shapes = []
    for media in operation["requestBody"].get("content", {}).values():
        body = _resolve(media.get("schema", {}), components)
        shapes.extend([_resolve(shape, components) for shape in body.get("oneOf", [])] or [body])
    return bool(shapes) and all(shape.get("required") or shape.get("anyOf") for shape in shapes)


def add_common_responses(result, generator, request, public):
    """Post-processing hook: every operation documents the error envelope and our headers."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components = result["components"]["schemas"]
    _precise_request_bodies(components)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _precise_parameters(path, operation)
            if "requestBody" in operation:
                operation["requestBody"]["required"] = _body_is_required(operation, components)
            is_public = not operation.get("security")
            responses = operation["responses"]
            errors = dict(PUBLIC_ERRORS if is_public else AUTHENTICATED_ERRORS)
            if "{" in path:
                errors["404"] = NOT_FOUND
            elif any(p.get("name") == "bot_id" for p in operation.get("parameters", [])) or _body_names_a_bot(
                operation, components
            ):
                errors["404"] = BOT_NOT_FOUND
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
                if code in ("429", "503"):
                    headers.update(RETRY_AFTER_HEADER)
                if method == "post" and not is_public and code.startswith("2"):
                    headers.update(REPLAYED_HEADER)
    return result


class CompactOpenApiJsonRenderer(OpenApiJsonRenderer2):
    """`/v1/openapi.json` without the pretty-printing drf-spectacular adds (a third of the size on the wire);
    a client that wants it indented asks with `Accept: application/json; indent=2`."""

    def get_indent(self, accepted_media_type, renderer_context):
        return JSONRenderer.get_indent(self, accepted_media_type, renderer_context)
