"""Spooled bytes are signed S/MIME (base64, high entropy) and live for seconds: PostgreSQL's
TOAST compression of them costs more than the little space it saves (EXTERNAL: out of line,
uncompressed). A no-op elsewhere."""

from django.db import migrations


def storage_external(apps, schema_editor) -> None:  # noqa: ANN001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE transport_inboundmessage ALTER COLUMN raw SET STORAGE EXTERNAL")


def storage_default(apps, schema_editor) -> None:  # noqa: ANN001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE transport_inboundmessage ALTER COLUMN raw SET STORAGE EXTENDED")


class Migration(migrations.Migration):
    dependencies = [("transport", "0005_inboundmessage_raw_spool")]

    operations = [migrations.RunPython(storage_external, storage_default)]
