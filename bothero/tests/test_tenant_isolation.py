"""Every URL pattern of the API, every method it serves, with another tenant's ids: 404, nothing changed.

The test walks Django's URL resolver, so a new endpoint is covered the day it
is added: its path parameters are filled with Alice's objects (by the path
segment before them and their name, the table the OpenAPI document uses for
id patterns) and Charlie calls it. An endpoint whose parameter is not in the
table fails here until it is added: that is the point.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from bothero.api.schema import PATH_ID_PREFIXES
from bothero.api.views import TenantAPIView, TenantViewSet
from bothero.testing.factories import (
    ConversationFactory,
    MessageFactory,
    WebhookEndpointFactory,
)
from bots.models import Bot
from conversations.models import Message
from knowledge.models import CuratedAnswer, Document, WebsiteSource
from webhooks.services import webhook_test_send

METHODS = ("get", "post", "put", "patch", "delete")


def api_patterns(patterns=None, prefix=""):
    """(route with <converters>, view callback) for every URL pattern, depth first."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from api_patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def served_methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a viewset bound to {"get": "list", ...}
        return [method for method in METHODS if method in actions]
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    return [method for method in METHODS if view_class is not None and hasattr(view_class, method)]


def tenant_routes():
    routes = [(route, callback) for route, callback in api_patterns() if route.startswith("v1/") and "<" in route]
    assert len(routes) >= 15, routes  # the walk found the API
    return routes


@pytest.fixture
def alices_objects(alice, alice_bot):
    """One of Alice's objects of every kind a path names, by id prefix."""
    conversation = ConversationFactory(bot=alice_bot)
    MessageFactory(conversation=conversation)
    assistant = MessageFactory(conversation=conversation, role=Message.Role.ASSISTANT, content="We open at 9.")
    document = Document.objects.create(
        tenant=alice.tenant, bot=alice_bot, title="Hours", source_type=Document.SourceType.TEXT
    )
    endpoint = WebhookEndpointFactory(tenant=alice.tenant)
    delivery = webhook_test_send(endpoint=endpoint)
    answer = CuratedAnswer.objects.create(tenant=alice.tenant, bot=alice_bot, question="Hours?", answer="9 to 5.")
    source = WebsiteSource.objects.create(
        tenant=alice.tenant, bot=alice_bot, type=WebsiteSource.Type.SITEMAP, url="https://example.com/sitemap.xml"
    )
    return {
        "bot": alice_bot.public_id,
        "conv": conversation.public_id,
        "msg": assistant.public_id,
        "doc": document.public_id,
        "wh": endpoint.public_id,
        "dlv": delivery.public_id,
        "key": alice.tenant.api_keys.get().public_id,
        "ans": answer.public_id,
        "src": source.public_id,
    }


def fill(route: str, ids: dict) -> str:
    segments = route.split("/")
    for index, segment in enumerate(segments):
        if segment.startswith("<"):
            name = segment.strip("<>").split(":")[-1]
            prefix = PATH_ID_PREFIXES.get((segments[index - 1], name))
            assert prefix, f"/{route}: add ({segments[index - 1]!r}, {name!r}) to PATH_ID_PREFIXES"
            segments[index] = ids[prefix]
    return "/" + "/".join(segments)


@pytest.mark.parametrize(("route", "callback"), tenant_routes(), ids=lambda value: str(value)[:60])
def test_another_tenants_id_is_a_404_on_every_method_of_every_route(alice, charlie, alices_objects, route, callback):
    methods = served_methods(callback)
    assert methods, f"/{route} serves no method the walk knows"
    path = fill(route, alices_objects)
    bots_before = Bot.objects.filter(tenant=alice.tenant).count()
    for method in methods:
        response = getattr(charlie.client, method)(path, {}, format="json")
        assert response.status_code == 404, (method.upper(), path, response.status_code, response.content[:300])
        assert response.json()["error"]["type"] == "invalid_request_error"
    # Nothing of Alice's was touched.
    assert Bot.objects.filter(tenant=alice.tenant).count() == bots_before
    for prefix, public_id in alices_objects.items():
        assert public_id, prefix


def test_alice_herself_reaches_the_same_routes(alice, alices_objects):
    # The other side of the walk: the ids are right, so Charlie's 404s are about the tenant.
    for route, callback in tenant_routes():
        if "get" in served_methods(callback) and not route.endswith("events"):
            response = alice.client.get(fill(route, alices_objects))
            assert response.status_code == 200, (route, response.status_code, response.content[:300])


def test_an_anonymous_client_gets_401_not_404(alices_objects):
    for route, callback in tenant_routes():
        for method in served_methods(callback):
            response = getattr(APIClient(), method)(fill(route, alices_objects), {}, format="json")
            assert response.status_code == 401, (method, route, response.status_code)


@pytest.mark.parametrize("method", ["get_queryset", "get_object", "get_permissions", "get_authenticators"])
@pytest.mark.parametrize("base", [TenantViewSet, TenantAPIView])
def test_a_view_that_overrides_the_guard_fails_at_import(base, method):
    with pytest.raises(TypeError, match="bypasses the tenant guard"):
        type("LeakyView", (base,), {method: lambda self: None})


def test_the_escape_hatch_is_named_dangerously(alice, charlie, alice_bot):
    from bots.models import Bot as BotModel

    class EveryBot(TenantViewSet):
        queryset = BotModel.objects.none()

        def dangerously_get_queryset(self):
            return BotModel.objects.all()

    view = EveryBot()
    view.request = type("Request", (), {"user": charlie})()
    assert alice_bot in view.get_queryset()
