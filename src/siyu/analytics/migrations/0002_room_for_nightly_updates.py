"""Leave half of each page free in the RFM and lifecycle tables on PostgreSQL.

The nightly recompute rewrites every RFM row (recency moves each day). With room on the page
PostgreSQL updates a row in place (a HOT update) instead of adding it to every index again,
which makes the nightly write several times cheaper. Other databases update in place anyway.
"""

from django.db import migrations

from siyu.core.db import room_for_updates


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0001_initial"),
    ]

    operations = [
        room_for_updates("analytics_memberrfm", "analytics_memberlifecycle"),
    ]
