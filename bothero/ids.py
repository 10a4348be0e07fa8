"""Prefixed, random public ids (`bot_4fJ...`). Database primary keys never leave the server."""

import secrets
import string

from django.db import models

BASE62 = string.digits + string.ascii_letters
PUBLIC_ID_RANDOM_LENGTH = 24


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{random_base62(PUBLIC_ID_RANDOM_LENGTH)}"


class PublicIdField(models.CharField):
    """A unique `prefix_<random>` id, generated when a row is first saved."""

    def __init__(self, *args, prefix: str, **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", len(prefix) + 1 + PUBLIC_ID_RANDOM_LENGTH)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value:
            value = new_public_id(self.prefix)
            setattr(model_instance, self.attname, value)
        return value
