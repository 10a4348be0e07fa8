"""The event types an endpoint can subscribe to. `"*"` subscribes to all of them."""

ALL_EVENTS = "*"

EVENT_TYPES: dict[str, str] = {
    "conversation.created": "A conversation was started with one of your bots.",
    "message.created": "A message was stored: a customer's, the bot's answer (with usage and sources) or an "
    "agent's reply (role `agent`).",
    "conversation.handoff_requested": "A conversation was handed to a person (the customer asked, the bot fell "
    "back too often, or your team took it over); the bot stays silent in it.",
    "conversation.resumed": "A handed-off conversation was given back to the bot.",
    "conversation.closed": "A conversation was closed.",
    "lead.captured": "Contact details were captured in a conversation.",
    "document.ready": "A knowledge document finished processing and is searchable.",
    "document.failed": "A knowledge document could not be processed.",
    "source.synced": "A website source finished a sync (data: the source with its last_result).",
    "source.failed": "A website source's sync could not discover any page (its sitemap or start page failed).",
    "bot.created": "A bot was created.",
    "bot.updated": "A bot's configuration changed.",
    "bot.deleted": "A bot was deleted.",
    "webhook.disabled": "One of your webhook endpoints was disabled after failing (or answering 410 Gone).",
}

# Every value an endpoint's `events` may hold.
SUBSCRIBABLE = [ALL_EVENTS, *EVENT_TYPES]

# Sent only to the endpoint being tested, by `POST /v1/webhooks/:id/test`; not subscribable.
TEST_EVENT = "webhook.test"


def unknown_event_types(types: list[str]) -> list[str]:
    return [name for name in types if name != ALL_EVENTS and name not in EVENT_TYPES]
