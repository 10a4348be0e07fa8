from accounts.keys import PUBLISHABLE_KEY_PREFIX, hash_api_key, is_well_formed_api_key
from accounts.models import ApiKey, Tenant
from bots.models import Bot


def hosted_chat_bot(*, bot_id: str, key: str) -> Bot | None:
    """The bot behind a hosted chat link, when `key` is a live publishable key for it (of an active tenant on a
    plan with the API); None otherwise, whatever the reason, so a link reveals nothing about other bots."""
    if not key.startswith(PUBLISHABLE_KEY_PREFIX) or not is_well_formed_api_key(key):
        return None
    api_key = (
        ApiKey.objects.select_related("tenant__plan")
        .filter(key_hash=hash_api_key(key), key_type=ApiKey.Type.PUBLISHABLE)
        .first()
    )
    if api_key is None or not api_key.is_active:
        return None
    tenant = api_key.tenant
    if tenant.status != Tenant.Status.ACTIVE or not tenant.plan.api_access:
        return None
    return api_key.bots.filter(public_id=bot_id, status=Bot.Status.ACTIVE).first()
