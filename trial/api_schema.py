"""The OpenAPI schema says what the API refuses: every operation lists its 4xx answers, each with a JSON body.

drf-spectacular documents what a view declares; the refusals every view shares are added here, by what the
operation is: 401 (with `WWW-Authenticate`) unless anyone may call it, 400 for a body or a filter it validates, 403
for a write (a role that may not), 404 for an object named in the path. A refusal a view declares without a body
(`OpenApiResponse(description=...)`, 409 and 423 included) gets the shared body and an example, so that a client
reads every refusal the same way: `{"detail": message}` or, for 400, `{field: [messages]}`.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import ResolvedComponent, build_bearer_security_scheme_object
from rest_framework import permissions

JSON = "application/json"
PAGINATION = {"limit", "offset"}

ERROR_SCHEMA = {
    "type": "object",
    "description": "Why the request was refused; some refusals add fields (`current_version`, `open_queries`).",
    "properties": {"detail": {"type": "string", "description": "The reason, in the user's language."}},
    "required": ["detail"],
    "additionalProperties": True,
}
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Refused input: {field: [messages]}, with `non_field_errors` for what concerns no one field.",
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": True},
        ]
    },
}

# (description when the view gives none, example body)
REFUSALS: dict[str, tuple[str, dict]] = {
    "400": ("The input was refused; nothing was saved.", {"non_field_errors": ["This field is required."]}),
    "401": (
        "No valid credentials: no token, an unknown token, or one that expired or was revoked.",
        {"detail": "Authentication credentials were not provided."},
    ),
    "403": (
        "The user's role may not do this at this site.",
        {"detail": "Your role does not allow this action at this site."},
    ),
    "404": ("No such object among the user's sites.", {"detail": "Not found."}),
    "409": ("The request conflicts with the data as they are now.", {"detail": "The data changed meanwhile."}),
    "423": ("The data are locked.", {"detail": "These data are locked: they cannot be changed."}),
}
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "schema": {"type": "string"},
        "description": "`Token`: send `Authorization: Token <key>` (POST /api/v1/auth/token/ issues one).",
    }
}


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args: object, **kwargs: object) -> dict | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in self._refusals(operation):
            responses.setdefault(code, {"description": REFUSALS[code][0]})
        for code, response in responses.items():
            if code.startswith("4") and code in REFUSALS:
                self._describe_refusal(code, response)
        return operation

    def _refusals(self, operation: dict) -> list[str]:
        codes = []
        query = [p for p in operation.get("parameters", []) if p.get("in") == "query" and p["name"] not in PAGINATION]
        if "requestBody" in operation or query:
            codes.append("400")
        if not self._anyone_may_call():
            codes.append("401")
            if self.method not in permissions.SAFE_METHODS:
                codes.append("403")
        if "{" in self.path:
            codes.append("404")
        return codes

    def _anyone_may_call(self) -> bool:
        return all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())

    def _describe_refusal(self, code: str, response: dict) -> None:
        description, example = REFUSALS[code]
        response["description"] = response.get("description") or description
        content = response.setdefault("content", {})
        if not content:
            content[JSON] = {"schema": self._component("FieldErrors" if code == "400" else "Error")}
        for media in content.values():
            media.setdefault("schema", self._component("FieldErrors" if code == "400" else "Error"))
            if not media.get("examples") and "example" not in media:
                media["examples"] = {f"Refused{code}": {"value": example, "summary": description}}
        if code == "401":
            response.setdefault("headers", {}).update(WWW_AUTHENTICATE)

    def _component(self, name: str) -> dict:
        schema = FIELD_ERRORS_SCHEMA if name == "FieldErrors" else ERROR_SCHEMA
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        self.registry.register_on_missing(component)
        return component.ref


class TokenScheme(OpenApiAuthenticationExtension):
    """The knox token, sent as `Authorization: Token <key>`."""

    target_class = "trial.tokens.ExpiringTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
