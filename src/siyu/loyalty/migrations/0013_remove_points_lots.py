"""Contract: the lots live in their credit entries (0012); their own table goes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0012_lots_in_their_credit_entries'),
    ]

    operations = [
        migrations.DeleteModel(
            name='PointsLot',
        ),
    ]
