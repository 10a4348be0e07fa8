"""Chat providers, chosen per deployment by `LLM_PROVIDER`: `extractive` (offline default) or `openai`."""

from __future__ import annotations

import threading

from django.conf import settings

from conversations.providers.base import (
    ChatProvider,
    Completion,
    Grounding,
    ProviderRequest,
    StreamPiece,
    UpstreamTimeoutError,
    Usage,
)

__all__ = [
    "ChatProvider",
    "Completion",
    "Grounding",
    "ProviderRequest",
    "StreamPiece",
    "UpstreamTimeoutError",
    "Usage",
    "get_provider",
]

_providers: dict[tuple, ChatProvider] = {}
_lock = threading.Lock()


def get_provider() -> ChatProvider:
    """The provider the settings ask for, built once per configuration (clients keep their connections)."""
    if settings.LLM_PROVIDER == "openai":
        key: tuple = (
            "openai",
            settings.LLM_BASE_URL,
            settings.LLM_API_KEY,
            settings.LLM_MODEL,
            settings.LLM_TIMEOUT_SECONDS,
            settings.LLM_MAX_RETRIES,
        )
    else:
        key = ("extractive",)
    provider = _providers.get(key)
    if provider is None:
        with _lock:
            provider = _providers.get(key)
            if provider is None:
                provider = _build(key)
                _providers[key] = provider
    return provider


def _build(key: tuple) -> ChatProvider:
    if key[0] == "openai":
        from conversations.providers.openai_compatible import OpenAICompatibleProvider

        _, base_url, api_key, model, timeout, max_retries = key
        return OpenAICompatibleProvider(
            base_url=base_url, api_key=api_key, model=model, timeout=timeout, max_retries=max_retries
        )
    from conversations.providers.extractive import ExtractiveProvider

    return ExtractiveProvider()
