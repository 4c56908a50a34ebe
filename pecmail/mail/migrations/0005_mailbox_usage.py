"""A mailbox's space kept by the database (pecmail.mail.usage).

Triggers on ``mail_message`` write a ``MailboxUsageChange`` row for every message inserted,
deleted, or moved to another mailbox or resized; ``Mailbox.used_bytes`` starts as the sum of
the messages already there. The triggers are created before that sum, in the same
transaction: on PostgreSQL ``CREATE TRIGGER`` holds off writers to ``mail_message`` until the
commit, so no message is counted twice or missed.

SQLite rebuilds a table for most ``ALTER TABLE`` changes, which drops its triggers: a later
migration that alters ``mail_message`` must create them again (``USAGE_TRIGGERS_SQLITE``);
``tests/mail/test_usage.py`` fails if they are missing after all migrations.
"""

from django.db import migrations, models

USAGE_TRIGGERS_POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION mail_message_usage() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO mail_mailboxusagechange (mailbox_id, bytes)
            SELECT mailbox_id, SUM(size) FROM usage_new GROUP BY mailbox_id;
        ELSE
            INSERT INTO mail_mailboxusagechange (mailbox_id, bytes)
            SELECT mailbox_id, -SUM(size) FROM usage_old GROUP BY mailbox_id;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION mail_message_usage_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO mail_mailboxusagechange (mailbox_id, bytes)
        VALUES (OLD.mailbox_id, -OLD.size), (NEW.mailbox_id, NEW.size);
        RETURN NULL;
    END $$
    """,
    # One row per statement and mailbox: emptying a Trash of 10,000 messages writes one.
    """
    CREATE TRIGGER mail_message_usage_insert AFTER INSERT ON mail_message
    REFERENCING NEW TABLE AS usage_new FOR EACH STATEMENT EXECUTE FUNCTION mail_message_usage()
    """,
    """
    CREATE TRIGGER mail_message_usage_delete AFTER DELETE ON mail_message
    REFERENCING OLD TABLE AS usage_old FOR EACH STATEMENT EXECUTE FUNCTION mail_message_usage()
    """,
    # Flag and folder changes update messages all day: only a change of mailbox or size counts.
    """
    CREATE TRIGGER mail_message_usage_update AFTER UPDATE OF mailbox_id, size ON mail_message
    FOR EACH ROW WHEN (OLD.mailbox_id IS DISTINCT FROM NEW.mailbox_id OR OLD.size IS DISTINCT FROM NEW.size)
    EXECUTE FUNCTION mail_message_usage_moved()
    """,
]

DROP_POSTGRESQL = [
    "DROP TRIGGER IF EXISTS mail_message_usage_insert ON mail_message",
    "DROP TRIGGER IF EXISTS mail_message_usage_delete ON mail_message",
    "DROP TRIGGER IF EXISTS mail_message_usage_update ON mail_message",
    "DROP FUNCTION IF EXISTS mail_message_usage()",
    "DROP FUNCTION IF EXISTS mail_message_usage_moved()",
]

USAGE_TRIGGERS_SQLITE = [
    """
    CREATE TRIGGER IF NOT EXISTS mail_message_usage_insert AFTER INSERT ON mail_message BEGIN
        INSERT INTO mail_mailboxusagechange (mailbox_id, bytes) VALUES (NEW.mailbox_id, NEW.size);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS mail_message_usage_delete AFTER DELETE ON mail_message BEGIN
        INSERT INTO mail_mailboxusagechange (mailbox_id, bytes) VALUES (OLD.mailbox_id, -OLD.size);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS mail_message_usage_update AFTER UPDATE OF mailbox_id, size ON mail_message
    WHEN OLD.mailbox_id IS NOT NEW.mailbox_id OR OLD.size IS NOT NEW.size BEGIN
        INSERT INTO mail_mailboxusagechange (mailbox_id, bytes)
        VALUES (OLD.mailbox_id, -OLD.size), (NEW.mailbox_id, NEW.size);
    END
    """,
]

DROP_SQLITE = [
    "DROP TRIGGER IF EXISTS mail_message_usage_insert",
    "DROP TRIGGER IF EXISTS mail_message_usage_delete",
    "DROP TRIGGER IF EXISTS mail_message_usage_update",
]

FILL = """
UPDATE mail_mailbox SET used_bytes = COALESCE(
    (SELECT SUM(size) FROM mail_message WHERE mail_message.mailbox_id = mail_mailbox.id), 0
)
"""


def _run(schema_editor, statements: list[str]) -> None:
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def forward(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [*USAGE_TRIGGERS_POSTGRESQL, FILL])
    elif vendor == "sqlite":
        _run(schema_editor, [*USAGE_TRIGGERS_SQLITE, FILL])
    else:
        raise RuntimeError(f"pecmail supports PostgreSQL and SQLite, not {vendor}")


def backward(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    _run(schema_editor, DROP_POSTGRESQL if vendor == "postgresql" else DROP_SQLITE)


class Migration(migrations.Migration):
    dependencies = [("mail", "0004_message_notice_stage")]

    operations = [
        migrations.AddField(
            model_name="mailbox",
            name="used_bytes",
            field=models.BigIntegerField(default=0, editable=False, verbose_name="space used (bytes)"),
        ),
        migrations.CreateModel(
            name="MailboxUsageChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("mailbox_id", models.BigIntegerField(db_index=True)),
                ("bytes", models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(forward, backward),
    ]
