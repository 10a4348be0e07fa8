"""manage.py createtenant, createapikey and demo."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import Membership, Tenant
from bots.models import Bot
from knowledge.models import Document

pytestmark = pytest.mark.django_db

KEY = re.compile(r"\b(bh_live_[0-9A-Za-z]{38})\b")


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def bots_with(key: str):
    return APIClient().get("/v1/bots", HTTP_AUTHORIZATION=f"Bearer {key}")


def test_createtenant_creates_a_tenant_on_a_plan_with_its_owner():
    out = run("createtenant", "Acme", "--plan", "enterprise", "--owner-email", "owner@acme.test")
    tenant = Tenant.objects.get(name="Acme")
    assert tenant.public_id in out
    assert tenant.plan.slug == "enterprise"
    membership = Membership.objects.get(tenant=tenant)
    assert (membership.user.email, membership.role) == ("owner@acme.test", "owner")


def test_createtenant_with_a_password_lets_the_owner_sign_in():
    run("createtenant", "Acme", "--owner-email", "owner@acme.test", "--owner-password", "a long passphrase")
    response = APIClient().post(
        "/v1/auth/token",
        {"grant_type": "password", "email": "owner@acme.test", "password": "a long passphrase"},
        format="json",
    )
    assert response.status_code == 200, response.content


def test_createtenant_refuses_an_unknown_plan():
    with pytest.raises(CommandError, match="Unknown plan 'platinum'"):
        run("createtenant", "Acme", "--plan", "platinum", "--owner-email", "owner@acme.test")
    assert not Tenant.objects.filter(name="Acme").exists()


def test_createapikey_prints_a_working_key_once(alice):
    out = run("createapikey", alice.tenant.public_id, "--name", "deploy")
    key = KEY.search(out).group(1)
    assert bots_with(key).status_code == 200
    assert alice.tenant.api_keys.filter(name="deploy").exists()
    assert "not shown again" in out


def test_createapikey_with_require_signature_prints_the_signing_secret(alice):
    out = run("createapikey", alice.tenant.public_id, "--require-signature")
    key = KEY.search(out).group(1)
    assert re.search(r"Signing secret: bhsig_[0-9a-f]{64}", out)
    assert bots_with(key).json()["error"]["code"] == "signature_required"


def test_createapikey_refuses_an_unknown_tenant():
    with pytest.raises(CommandError, match="No tenant"):
        run("createapikey", "ten_nope")


def test_demo_is_idempotent_and_always_prints_a_working_key():
    first = run("demo")
    second = run("demo")
    assert Tenant.objects.filter(name="Demo").count() == 1
    tenant = Tenant.objects.get(name="Demo")
    assert tenant.plan.slug == "legend"
    assert Bot.objects.filter(tenant=tenant).count() == 1
    assert Document.objects.filter(tenant=tenant, title="Acme Widgets FAQ").count() == 1
    first_key, second_key = KEY.search(first).group(1), KEY.search(second).group(1)
    # The key is stored only as a hash, so each run makes a new one and retires the last.
    response = bots_with(second_key)
    assert response.status_code == 200
    assert [b["name"] for b in response.json()["data"]] == ["Demo Support Bot"]
    assert bots_with(first_key).status_code == 401
    assert f'curl -s http://127.0.0.1:8000/v1/bots -H "Authorization: Bearer {second_key}"' in second


def test_in_development_the_demo_key_survives_a_restart_in_a_private_file(settings, tmp_path):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    first, second = run("demo"), run("demo")
    key = KEY.search(first).group(1)
    assert KEY.search(second).group(1) == key  # printed again, still the same
    kept = tmp_path / "demo_api_key"
    assert kept.read_text().strip() == key
    assert kept.stat().st_mode & 0o777 == 0o600
    assert bots_with(key).status_code == 200
    assert f"kept in {kept}" in second


def test_a_kept_demo_key_that_no_longer_works_is_replaced(settings, tmp_path):
    from accounts.models import ApiKey
    from accounts.services import api_key_revoke

    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    old = KEY.search(run("demo")).group(1)
    revoked = ApiKey.objects.get(name="Demo key", revoked_at__isnull=True)
    api_key_revoke(tenant=revoked.tenant, public_id=revoked.public_id)
    new = KEY.search(run("demo")).group(1)
    assert new != old
    assert (tmp_path / "demo_api_key").read_text().strip() == new
    assert bots_with(new).status_code == 200


def test_with_debug_off_the_demo_key_is_never_written(settings, tmp_path):
    settings.DEBUG = False
    settings.VAR_DIR = tmp_path
    output = run("demo")
    assert "shown once" in output
    assert not (tmp_path / "demo_api_key").exists()
