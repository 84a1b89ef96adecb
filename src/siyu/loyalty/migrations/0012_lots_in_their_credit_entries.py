"""A credit entry carries its lot (``remaining``, ``expires_at``): allocations draw on the entry.

Expand: the new columns, filled from the lots (a lot's key is its credit entry's id, so the
allocations' ``lot_id`` values already name the entries), and allocations re-pointed. The lots
table goes in the next migration.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Exists, OuterRef, Subquery


def lots_into_entries(apps, schema_editor):
    PointsEntry = apps.get_model("loyalty", "PointsEntry")
    PointsLot = apps.get_model("loyalty", "PointsLot")
    lot = PointsLot.objects.filter(entry_id=OuterRef("pk"))
    PointsEntry.objects.filter(Exists(lot)).update(remaining=Subquery(lot.values("remaining")[:1]),
                                                   expires_at=Subquery(lot.values("expires_at")[:1]))


def entries_into_lots(apps, schema_editor):
    PointsEntry = apps.get_model("loyalty", "PointsEntry")
    PointsLot = apps.get_model("loyalty", "PointsLot")
    batch = []
    for pk, account_id, amount, remaining, occurred_at, expires_at in PointsEntry.objects.filter(
            remaining__isnull=False).order_by("pk").values_list(
            "pk", "account_id", "amount", "remaining", "occurred_at", "expires_at").iterator(chunk_size=5000):
        batch.append(PointsLot(entry_id=pk, account_id=account_id, amount=amount, remaining=remaining,
                               earned_at=occurred_at, expires_at=expires_at))
        if len(batch) == 5000:
            PointsLot.objects.bulk_create(batch)
            batch = []
    PointsLot.objects.bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0011_tier_history_without_key_checks'),
    ]

    operations = [
        migrations.AddField(
            model_name='pointsentry',
            name='expires_at',
            field=models.DateTimeField(blank=True, db_index=True, null=True, verbose_name='expires at'),
        ),
        migrations.AddField(
            model_name='pointsentry',
            name='remaining',
            field=models.BigIntegerField(blank=True, help_text='Credits: the points not yet spent, expired or taken back', null=True, verbose_name='remaining'),
        ),
        # Before the copy, so that going back re-creates the lots before allocations point at them again.
        migrations.AlterField(
            model_name='pointsallocation',
            name='lot',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='draws', to='loyalty.pointsentry', verbose_name='lot'),
        ),
        migrations.RunPython(lots_into_entries, entries_into_lots),
        migrations.AddConstraint(
            model_name='pointsentry',
            constraint=models.CheckConstraint(condition=models.Q(('remaining__isnull', True), models.Q(('amount__gt', 0), ('remaining__gte', 0), ('remaining__lte', models.F('amount'))), _connector='OR'), name='loyalty_entry_remaining_within_amount'),
        ),
    ]
