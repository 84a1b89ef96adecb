"""Keep the time of a member's last order in the RFM window instead of the days since it.

The days since the last order change every day, so the nightly recompute rewrote every RFM
row; the time changes only with new orders (or when the last one leaves the window), so the
recompute can skip unchanged rows. The days are computed on read (``MemberRfm.recency_days``).

Existing rows get ``computed_at`` minus their ``recency_days`` (to the day; the next recompute
writes the exact time). Reversible: going back computes the days up to ``computed_at``.
"""

from django.db import migrations, models

TABLE = "analytics_memberrfm"


def _run(schema_editor, sql: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)  # no parameters: a literal % stays as it is


def fill_last_order_at(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        value = "computed_at - recency_days * INTERVAL '1 day'"
    elif vendor == "mysql":
        value = "computed_at - INTERVAL recency_days DAY"
    else:
        value = "strftime('%Y-%m-%d %H:%M:%f', computed_at, '-' || recency_days || ' days')"
    _run(schema_editor, f"UPDATE {TABLE} SET last_order_at = {value}")


def fill_recency_days(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        value = "CAST(FLOOR(EXTRACT(EPOCH FROM computed_at - last_order_at) / 86400) AS INTEGER)"
    elif vendor == "mysql":
        value = "TIMESTAMPDIFF(DAY, last_order_at, computed_at)"
    else:
        value = ("(CAST(strftime('%s', computed_at) AS INTEGER) - CAST(strftime('%s', last_order_at) AS INTEGER))"
                 " / 86400")
    _run(schema_editor, f"UPDATE {TABLE} SET recency_days = {value}")


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0002_room_for_nightly_updates"),
    ]

    operations = [
        migrations.AddField(
            model_name="memberrfm",
            name="last_order_at",
            field=models.DateTimeField(null=True, verbose_name="last order"),
        ),
        migrations.AlterField(
            model_name="memberrfm",
            name="recency_days",
            field=models.PositiveIntegerField(null=True, verbose_name="days since last order"),
        ),
        migrations.RunPython(fill_last_order_at, fill_recency_days, elidable=False),
        migrations.AlterField(
            model_name="memberrfm",
            name="last_order_at",
            field=models.DateTimeField(verbose_name="last order"),
        ),
        migrations.RemoveField(
            model_name="memberrfm",
            name="recency_days",
        ),
    ]
