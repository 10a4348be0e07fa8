"""Event payloads of the chat engine: `conversation.created`, `message.created` and `lead.captured` carry the
objects the API shows (built without DRF where the chat's hot path writes them); so do the handoff events
(`conversation.handoff_requested`, `conversation.resumed`, `conversation.closed`: the conversation)."""

from conversations.models import Conversation, Lead, Message
from conversations.serializers import LeadSerializer, conversation_data, message_data


def conversation_event_data(conversation: Conversation) -> dict:
    """`conversation.created`'s data (and the handoff events'): the conversation object."""
    return conversation_data(conversation)


def message_event_data(message: Message) -> dict:
    """`message.created`'s data: the message object (the customer's, the assistant's and an agent's)."""
    return message_data(message)


def lead_event_data(lead: Lead) -> dict:
    """`lead.captured`'s data: the lead object."""
    return LeadSerializer(lead).data


# What a website visitor's live stream shows of a conversation: whose it is and where it stands.
VISITOR_CONVERSATION_FIELDS = ("id", "object", "bot_id", "status", "status_changed_at")


def visitor_event_data(event: str, data: dict) -> dict | None:
    """A live update as a publishable key's visitor sees it, or None when it is not for them.

    Their own messages are left out (the widget shows them as they are sent);
    the conversation events carry its id and status, not the rest of the
    conversation object (metadata, end user, handoff reason), which is for the
    business.
    """
    if event == "message.created":
        return None if data.get("role") == Message.Role.USER else data
    if event.startswith("conversation."):
        return {name: data.get(name) for name in VISITOR_CONVERSATION_FIELDS}
    return data
