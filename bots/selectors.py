from bothero.errors import NotFoundError
from bots.models import Bot


def bot_list(*, tenant):
    return Bot.objects.filter(tenant=tenant)


def bot_get(*, tenant, public_id: str, param: str = "bot_id") -> Bot:
    """The tenant's bot with this id, or NotFoundError (`bot_not_found` on `param`) — also for another tenant's bot."""
    bot = Bot.objects.filter(tenant=tenant, public_id=public_id).select_related("tenant").first()
    if bot is None:
        raise NotFoundError(f"No such bot: {public_id}.", code="bot_not_found", param=param)
    return bot
