"""Event payloads of bots: `bot.created` and `bot.updated` carry the bot object, `bot.deleted` the deletion."""

from bots.models import Bot
from bots.serializers import BotSerializer


def bot_event_data(bot: Bot) -> dict:
    """The bot object, as the API shows it."""
    return BotSerializer(bot).data


def bot_deleted_event_data(bot: Bot) -> dict:
    """What `DELETE /v1/bots/:id` answers."""
    return {"id": bot.public_id, "object": "bot", "deleted": True}
