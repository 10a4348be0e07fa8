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
