from django.contrib.postgres.fields import ArrayField
from django.db import models

from bothero.ids import PublicIdField


class Event(models.Model):
    """The outbox: an event is written in the same transaction as the change that caused it."""

    public_id = PublicIdField(prefix="evt")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once the event has been fanned out into deliveries (or needed none).
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


class WebhookEndpoint(models.Model):
    """A URL of the tenant's that receives signed events of the types it subscribes to."""

    class DisabledReason(models.TextChoices):
        NONE = "", "enabled"
        MANUAL = "manual", "disabled by the tenant"
        GONE = "gone", "the endpoint answered 410 Gone"
        FAILING = "failing", "failing for too long"

    public_id = PublicIdField(prefix="wh")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    events = ArrayField(models.CharField(max_length=64), help_text='Event types, or ["*"] for all.')
    description = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=16, choices=DisabledReason.choices, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Start of the current run of failed attempts; cleared by any success.
    failing_since = models.DateTimeField(null=True, blank=True)
    # `whsec_<base64>`. After a rotation the previous secret keeps signing beside
    # the new one until `previous_secret_expires_at`.
    secret = models.CharField(max_length=128)
    previous_secret = models.CharField(max_length=128, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-id"]),
            models.Index(fields=["tenant"], condition=models.Q(enabled=True), name="webhook_endpoint_enabled"),
        ]

    def __str__(self):
        return f"{self.url} ({self.public_id})"

    def signing_secrets(self, now) -> list[str]:
        """The secrets that sign a message sent at `now`: the current one, and the previous during its grace."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret)
        return secrets


class Delivery(models.Model):
    """One event on its way to one endpoint; every try is a `DeliveryAttempt`."""

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its next attempt (the first, or a retry)
        SENDING = "sending"  # claimed by a worker until `claimed_until`
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # retries exhausted, or the endpoint answered 410

    public_id = PublicIdField(prefix="dlv")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # When a task for the next attempt was last put on the queue; the sweep re-queues
    # a due delivery whose message seems lost.
    queued_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="one_delivery_per_event_endpoint")]
        indexes = [
            models.Index(fields=["endpoint", "-id"]),
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_pending_due"),
            models.Index(fields=["claimed_until"], condition=models.Q(status="sending"), name="delivery_sending_lease"),
        ]

    def __str__(self):
        return f"{self.public_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery (or the record that a worker was lost while making it)."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        INTERRUPTED = "interrupted"  # the worker was lost before it recorded a result

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    url = models.URLField(max_length=2048)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_attempt_per_number")]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
