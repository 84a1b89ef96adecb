"""History rows (``ModelChange``) keep their member and brand keys without database checks.

A first scoring appends a history row per member and model, 1.8 million at a million members;
PostgreSQL checked both keys of each at COMMIT. The history is append-only and written only by
the recompute from members and brands it has just read; merges move the rows with the member's
other rows, and deletions go through the ORM's cascade.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0003_rfm_last_order_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="modelchange",
            name="brand",
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="org.brand", verbose_name="brand"),
        ),
        migrations.AlterField(
            model_name="modelchange",
            name="member",
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="members.member", verbose_name="member"),
        ),
    ]
