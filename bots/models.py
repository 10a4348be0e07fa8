from django.db import models

from bothero.ids import PublicIdField

DEFAULT_MODEL = "gpt-oss-120b"
DEFAULT_FALLBACK = (
    "Sorry, I don't have an answer to that yet. Could you rephrase, or leave your email so we can follow up?"
)


# The fields an owner may set through the API and the admin (in display order).
EDITABLE_FIELDS = (
    "name",
    "description",
    "instructions",
    "model",
    "temperature",
    "max_tokens",
    "welcome_message",
    "fallback_message",
    "retrieval",
    "lead_capture",
    "widget",
    "handoff",
    "status",
)


def default_retrieval():
    return {"top_k": 5, "min_score": 0.0}


def default_lead_capture():
    return {"enabled": False, "fields": ["name", "email", "phone"]}


def default_widget():
    """How the web chat widget looks (`/widget.js`, the hosted chat page)."""
    return {"color": "#2563eb", "position": "right", "launcher_text": "Chat with us"}


DEFAULT_HANDOFF_PHRASES = [
    "talk to a human",
    "speak to a human",
    "talk to a person",
    "speak to a person",
    "talk to someone",
    "speak to someone",
    "real person",
    "human agent",
    "live agent",
    "customer service representative",
]
DEFAULT_HANDOFF_MESSAGE = "I'm passing you to a person from our team. They will reply here."


def default_handoff():
    # Off by default: a bot that hands off stops answering until someone replies or resumes it.
    return {
        "enabled": False,
        "phrases": list(DEFAULT_HANDOFF_PHRASES),
        "after_fallbacks": None,
        "message": DEFAULT_HANDOFF_MESSAGE,
    }


class Bot(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"

    public_id = PublicIdField(prefix="bot")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    instructions = models.TextField(blank=True, max_length=20000)
    model = models.CharField(max_length=100, default=DEFAULT_MODEL)
    temperature = models.FloatField(default=0.2)
    max_tokens = models.PositiveIntegerField(default=512)
    welcome_message = models.TextField(blank=True, max_length=2000)
    fallback_message = models.TextField(default=DEFAULT_FALLBACK, max_length=2000)
    retrieval = models.JSONField(default=default_retrieval)
    lead_capture = models.JSONField(default=default_lead_capture)
    widget = models.JSONField(default=default_widget)
    handoff = models.JSONField(default=default_handoff)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-id"])]

    def __str__(self):
        return f"{self.name} ({self.public_id})"
