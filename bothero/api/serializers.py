"""Serializer building blocks shared by the apps."""

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

# Some character that str.strip() keeps (what DRF trims away). Not a bare \S: for Python \x1c-\x1f are
# white space, for the ECMAScript and Rust regexes of OpenAPI tools they are not.
NOT_BLANK_PATTERN = r"[^\s\x1c-\x1f]"


class StrictSerializer(serializers.Serializer):
    """An input serializer that refuses parameters it does not know.

    A misspelt field is a 400 `unknown_parameter` naming it, rather than a
    request that silently does less than the client meant.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = [key for key in data if key not in writable]
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [ErrorDetail("Unknown parameter.", code="unknown_parameter")]}
                )
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON `true`/`false` only (DRF would also take 0, 1, "yes", "on", ...), as the OpenAPI document says."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only (DRF would also take "5" and 5.0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number only (DRF would also take "0.5")."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string only (DRF would also take 0 or 1.5 and turn them into "0" or "1.5")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictQueryBooleanField(serializers.BooleanField):
    """A boolean query parameter: the strings `true` and `false` only, as OpenAPI clients send them.

    DRF would also take `1`, `yes`, `on`, ... and, with allow_null, `null` and the empty string.
    """

    def to_internal_value(self, data):
        if data == "true":
            return True
        if data == "false":
            return False
        self.fail("invalid", input=data)


_URL_CHARACTERS = re.compile(r"^[!-~]+$")
# RFC 3986 reg-name characters, and an IPv6 literal's (its brackets are gone from `hostname`).
_HOST_CHARACTERS = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=%:-]+$")


@extend_schema_field({"type": "string", "format": "uri", "maxLength": 2048, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})
class HttpUrlField(StrictCharField):
    """An absolute URL (RFC 3986: ASCII, no spaces) with a host; the schema says http(s).

    Not DRF's URLField: Django's validator also refuses host names longer than DNS allows, which
    the URI syntax (and so the OpenAPI `format: uri`) does not; such a host simply never resolves,
    and where the URL may point (https only, public addresses) is the SSRF guard's to say
    (`bothero.netguard`).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 2048)
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        url = super().to_internal_value(data)
        try:
            parts = urlsplit(url)
            scheme, host = parts.scheme, parts.hostname or ""
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
        except ValueError:
            scheme, host = "", ""
        # The scheme is the SSRF guard's to refuse, with its own code (`url_scheme_not_allowed`).
        if not _URL_CHARACTERS.match(url) or not scheme or not _HOST_CHARACTERS.match(host):
            raise serializers.ValidationError("Enter a valid URL.", code="invalid_url")
        return url
