from django.db import models

from bothero.ids import PublicIdField


class Conversation(models.Model):
    class Status(models.TextChoices):
        BOT = "bot"  # the bot answers
        HANDOFF = "handoff"  # a person answers; the bot stays silent
        CLOSED = "closed"  # over: no more messages

    class HandoffReason(models.TextChoices):
        PHRASE = "phrase"  # the customer's message asked for a person
        REQUESTED = "requested"  # the chat request's `handoff` flag
        FALLBACKS = "fallbacks"  # the bot fell back too many times in a row
        API = "api"  # POST /v1/conversations/:id/handoff

    public_id = PublicIdField(prefix="conv")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="conversations")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="conversations")
    # The integrator's own id for the person chatting, if they send one in metadata.
    end_user_id = models.CharField(max_length=200, blank=True)
    # SHA-256 of the chat widget's visitor id, for conversations started with a publishable key: only that
    # visitor may continue or read it (the id itself stays in the visitor's browser).
    visitor_hash = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    has_lead = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BOT)
    handoff_reason = models.CharField(max_length=16, choices=HandoffReason.choices, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-id"]),
            models.Index(fields=["tenant", "bot", "created_at"]),
            # The agents' queue: a tenant's conversations waiting for (or with) a person.
            models.Index(fields=["tenant", "-id"], condition=~models.Q(status="bot"), name="conversation_not_bot"),
        ]


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        AGENT = "agent"  # a person of the business, replying in a handed-off conversation

    class Status(models.TextChoices):
        COMPLETE = "complete"
        INCOMPLETE = "incomplete"
        FAILED = "failed"

    class Feedback(models.TextChoices):
        UP = "up"
        DOWN = "down"

    public_id = PublicIdField(prefix="msg")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="messages")
    # Denormalised from the conversation so analytics can filter by bot without a join.
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    sources = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    # True when the assistant answered with the bot's fallback message (nothing relevant found).
    is_fallback = models.BooleanField(default=False)
    feedback_rating = models.CharField(max_length=8, choices=Feedback.choices, null=True, blank=True)
    feedback_comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "id"]),
            models.Index(fields=["tenant", "bot", "created_at"]),
            models.Index(fields=["tenant", "created_at"]),
        ]


class Lead(models.Model):
    public_id = PublicIdField(prefix="lead")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="leads")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="leads")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="leads")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    captured_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "captured_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "email"],
                condition=~models.Q(email=""),
                name="unique_lead_per_conversation_email",
            )
        ]
