from django.db import models

from bothero.ids import PublicIdField


class Event(models.Model):
    """The outbox: an event is written in the same transaction as the change that caused it."""

    public_id = PublicIdField(prefix="evt")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-id"]),
            models.Index(
                fields=["dispatched_at"], condition=models.Q(dispatched_at__isnull=True), name="event_undispatched"
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.public_id}"
