"""Analytics storage: a daily rollup per tenant, bot and UTC day, and each tenant's rollup watermark.

Rollups hold only additive figures (counts and sums) plus a mergeable latency
histogram, so any run of whole days can be summed. Figures that are not
additive across days (unique end users) are always computed live.
"""

from django.db import models

from accounts.models import Tenant


class DailyRollup(models.Model):
    """One bot's activity on one UTC day, as written by `analytics.services.rollup_day`.

    The row with no bot is the whole tenant's day (the sum of its bots' rows, with
    their histograms merged), so a tenant-wide range reads one row a day however
    many bots the tenant has.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="daily_rollups")
    bot = models.ForeignKey("bots.Bot", null=True, blank=True, on_delete=models.CASCADE, related_name="daily_rollups")
    day = models.DateField(help_text="The UTC calendar day.")
    conversations = models.PositiveIntegerField(default=0)
    # Conversations without an end_user_id: each counts as a unique end user of its own.
    anonymous_conversations = models.PositiveIntegerField(default=0)
    user_messages = models.PositiveIntegerField(default=0)
    assistant_messages = models.PositiveIntegerField(default=0)
    answered_from_knowledge = models.PositiveIntegerField(default=0)
    fallbacks = models.PositiveIntegerField(default=0)
    feedback_up = models.PositiveIntegerField(default=0)
    feedback_down = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    leads = models.PositiveIntegerField(default=0)
    # Assistant latencies as a dense log-bucket histogram (analytics.latency): mergeable by addition.
    latency_histogram = models.BinaryField(default=b"")
    # Named end users whose conversations started this day (analytics.sketches), mergeable by union:
    # how many, their HyperLogLog registers, and their hashes while few (null above EXACT_PER_DAY).
    named_end_users = models.PositiveIntegerField(default=0)
    end_user_registers = models.BinaryField(default=b"")
    end_user_hashes = models.BinaryField(null=True, default=b"")
    # On the tenant-wide row: the bots summed into it, so a deleted bot's days can be found and re-rolled.
    bot_ids = models.JSONField(default=list, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "bot", "day"], name="unique_rollup_per_bot_day", nulls_distinct=False
            )
        ]
        indexes = [models.Index(fields=["tenant", "day"])]

    def __str__(self):
        return f"rollup {self.tenant_id}/{self.bot_id or 'all bots'}/{self.day}"


class RollupState(models.Model):
    """How far a tenant's rollups reach: every UTC day up to and including `rolled_up_through` is rolled up."""

    tenant = models.OneToOneField("accounts.Tenant", on_delete=models.CASCADE, related_name="rollup_state")
    rolled_up_through = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.tenant_id} rolled up through {self.rolled_up_through}"


class TenantUsage(Tenant):
    """A read-only admin view of a tenant's usage this month against its plan's limits."""

    class Meta:
        proxy = True
        verbose_name = "tenant usage"
        verbose_name_plural = "tenant usage"
