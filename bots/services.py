"""Bot configuration: create, update, delete, with plan limits and events."""

from django.db import transaction

from bothero.errors import PlanLimitError
from bots.events import bot_deleted_event_data, bot_event_data
from bots.models import EDITABLE_FIELDS, Bot
from knowledge import services as knowledge_services
from webhooks.services import event_emit


@transaction.atomic
def bot_create(*, tenant, **fields) -> Bot:
    """Create a bot within the plan's bot limit; emits `bot.created`."""
    # Lock the tenant row so two concurrent creates cannot both pass the limit check.
    type(tenant).objects.select_for_update().filter(pk=tenant.pk).first()
    limit = tenant.plan.max_bots
    if limit is not None and Bot.objects.filter(tenant=tenant).count() >= limit:
        raise PlanLimitError(
            f"Your {tenant.plan.name} plan allows {limit} bots. Delete one or upgrade your plan.",
            code="plan_limit_reached",
        )
    bot = Bot(tenant=tenant, **fields)
    bot.save()
    event_emit(tenant=tenant, type="bot.created", data=bot_event_data(bot))
    return bot


@transaction.atomic
def bot_update(*, bot: Bot, **fields) -> Bot:
    """Change some fields; emits `bot.updated` when anything changed."""
    changed = [name for name in EDITABLE_FIELDS if name in fields and getattr(bot, name) != fields[name]]
    for name in changed:
        setattr(bot, name, fields[name])
    if changed:
        bot.save(update_fields=[*changed, "updated_at"])
        event_emit(tenant=bot.tenant, type="bot.updated", data=bot_event_data(bot))
    return bot


@transaction.atomic
def bot_delete(*, bot: Bot) -> None:
    """Delete a bot with its documents and conversations; emits `bot.deleted`."""
    data = bot_deleted_event_data(bot)
    tenant, bot_id = bot.tenant, bot.pk
    bot.delete()
    # A large bot's own search indexes (partial, on its id) outlive its rows: dropped by a task.
    knowledge_services.bot_indexes_queue_if_needed(bot_id=bot_id)
    event_emit(tenant=tenant, type="bot.deleted", data=data)
