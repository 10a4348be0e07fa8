"""Reads of website sources."""

from knowledge.models import WebsiteSource


def website_source_list(*, tenant, bot=None):
    """The tenant's website sources (newest first once paginated), optionally one bot's."""
    sources = WebsiteSource.objects.filter(tenant=tenant).select_related("bot")
    return sources.filter(bot=bot) if bot is not None else sources
