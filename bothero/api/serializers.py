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
