from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0002_tenant_rows_histograms_end_user_sketches'),
    ]

    operations = [
        # Derived data in a new format: drop it; the next beat run rebuilds every day.
        migrations.RunSQL(
            'DELETE FROM analytics_dailyrollup; DELETE FROM analytics_rollupstate;',
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RemoveField(
            model_name='dailyrollup',
            name='end_users',
        ),
        migrations.AddField(
            model_name='dailyrollup',
            name='named_end_users',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='dailyrollup',
            name='end_user_registers',
            field=models.BinaryField(default=b''),
        ),
        migrations.AddField(
            model_name='dailyrollup',
            name='end_user_hashes',
            field=models.BinaryField(default=b'', null=True),
        ),
    ]
