from bothero.errors import NotFoundError
from bots.models import Bot


def bot_list(*, tenant, publishable_key=None):
    """The tenant's bots; with a publishable key, only the bots it may chat with."""
    bots = Bot.objects.filter(tenant=tenant)
    if publishable_key is not None:
        bots = bots.filter(publishable_keys=publishable_key)
    return bots


def bot_get(*, tenant, public_id: str, param: str = "bot_id", publishable_key=None) -> Bot:
    """The tenant's bot with this id, or NotFoundError (`bot_not_found` on `param`) — also for another tenant's bot,
    and for a bot the publishable key (if any) does not cover."""
    bot = (
        bot_list(tenant=tenant, publishable_key=publishable_key)
        .filter(public_id=public_id)
        .select_related("tenant")
        .first()
    )
    if bot is None:
        raise NotFoundError(f"No such bot: {public_id}.", code="bot_not_found", param=param)
    return bot
