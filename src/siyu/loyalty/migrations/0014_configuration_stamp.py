"""The configuration stamp: a token that database triggers change with every write to the tables
earning reads its configuration from (``models.ConfigurationStamp``)."""

from django.db import migrations, models

#: The tables whose writes change the token.
WATCHED = ("loyalty_loyaltyprogram", "loyalty_tier", "loyalty_benefit", "loyalty_purchaseexclusion",
           "loyalty_eventearnrule")
STAMP = "loyalty_configurationstamp"
#: A fresh random token, per database.
TOKEN = {"postgresql": "gen_random_uuid()::text", "mysql": "UUID()", "sqlite": "lower(hex(randomblob(16)))"}
EVENTS = ("insert", "update", "delete")


def create_triggers(apps, schema_editor):
    connection = schema_editor.connection
    vendor, quote = connection.vendor, schema_editor.quote_name
    # Random from the start too: two databases must never share a token (one may hold a configuration
    # written before the triggers existed, the other none, and a process may move between them).
    schema_editor.execute(f"INSERT INTO {quote(STAMP)} (id, token) VALUES (1, {TOKEN[vendor]})")
    touch = f"UPDATE {quote(STAMP)} SET token = {TOKEN[vendor]}"
    if vendor == "postgresql":  # one trigger per statement (TRUNCATE included)
        schema_editor.execute(f"CREATE FUNCTION loyalty_configuration_changed() RETURNS trigger LANGUAGE plpgsql "
                              f"AS $$ BEGIN {touch}; RETURN NULL; END $$")
        for table in WATCHED:
            schema_editor.execute(f"CREATE TRIGGER {table}_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                                  f"ON {quote(table)} FOR EACH STATEMENT EXECUTE FUNCTION loyalty_configuration_changed()")
        return
    for table in WATCHED:  # MariaDB and SQLite: one row trigger per table and event
        for event in EVENTS:
            body = f"{touch}" if vendor == "mysql" else f"BEGIN {touch}; END"
            schema_editor.execute(f"CREATE TRIGGER {table}_{event}_stamp AFTER {event.upper()} ON {quote(table)} "
                                  f"FOR EACH ROW {body}")


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in WATCHED:
            schema_editor.execute(f"DROP TRIGGER {table}_stamp ON {schema_editor.quote_name(table)}")
        schema_editor.execute("DROP FUNCTION loyalty_configuration_changed()")
        return
    for table in WATCHED:
        for event in EVENTS:
            schema_editor.execute(f"DROP TRIGGER {table}_{event}_stamp")


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0013_remove_points_lots'),
    ]

    operations = [
        migrations.CreateModel(
            name='ConfigurationStamp',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('token', models.CharField(max_length=36, verbose_name='token')),
            ],
            options={
                'verbose_name': 'configuration stamp',
                'verbose_name_plural': 'configuration stamps',
            },
        ),
        # MariaDB cannot create triggers inside a transaction; the others run the migration in one anyway.
        migrations.RunPython(create_triggers, drop_triggers, atomic=False, elidable=False),
    ]
