"""Event payloads of the chat engine: `conversation.created`, `message.created` and `lead.captured` carry the
objects the API shows (built without DRF where the chat's hot path writes them)."""

from conversations.models import Conversation, Lead, Message
from conversations.serializers import LeadSerializer, conversation_data, message_data


def conversation_event_data(conversation: Conversation) -> dict:
    """`conversation.created`'s data: the conversation object."""
    return conversation_data(conversation)


def message_event_data(message: Message) -> dict:
    """`message.created`'s data: the message object (the customer's and the assistant's)."""
    return message_data(message)


def lead_event_data(lead: Lead) -> dict:
    """`lead.captured`'s data: the lead object."""
    return LeadSerializer(lead).data
