from django.db import migrations


class Migration(migrations.Migration):
    """knox's own migrations create `knox_authtoken` even though KNOX_TOKEN_MODEL swaps it for
    accounts.AccessToken. The orphan table references auth_user, which breaks TRUNCATE (tests'
    flush) and is never used, so drop it."""

    dependencies = [("accounts", "0002_seed_plans"), ("knox", "0009_extend_authtoken_field")]
    operations = [migrations.RunSQL("DROP TABLE IF EXISTS knox_authtoken", migrations.RunSQL.noop)]
