"""Leave room on each page of the points accounts and tier rows on PostgreSQL.

Every batch of orders rewrites the account of each of its buyers (balance, tier bound), and the
nightly tier evaluation renews most tier rows. With free space on the page PostgreSQL updates a
row in place (a HOT update) instead of adding it again to each of the table's four indexes:
1,000 account updates took 8–10 ms instead of 26–66 ms on the bench's accounts. Other
databases update in place anyway. (As ``analytics/0002_room_for_nightly_updates``.)
"""

from django.db import migrations

from siyu.core.db import room_for_updates


class Migration(migrations.Migration):

    dependencies = [
        ("loyalty", "0004_ledger_fk_indexes_covered"),
    ]

    operations = [
        room_for_updates("loyalty_pointsaccount", "loyalty_membertier"),
    ]
