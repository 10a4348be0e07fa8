"""Serializer building blocks shared by the apps."""

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail


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
