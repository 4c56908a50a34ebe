"""The SQLite FTS5 table over the document table, and the triggers that keep it in step.

Used by migration 0002 and by the index rebuild (which drops the triggers while it rewrites
every document, then rebuilds the FTS5 structure from the table in one step: an external
content table corrupts if told to delete rows it does not hold).
"""

from __future__ import annotations

DOC = "search_messagesearchdocument"
FTS = "search_message_fts"
COLUMNS = ("subject", "addresses", "body", "attachments")
TRIGGERS = ("search_doc_ai", "search_doc_ad", "search_doc_au")


def create_table_sql() -> str:
    return (
        f"CREATE VIRTUAL TABLE {FTS} USING fts5({', '.join(COLUMNS)}, content='{DOC}', "
        "content_rowid='message_id', tokenize='unicode61 remove_diacritics 2')"
    )


def create_triggers_sql() -> list[str]:
    columns = ", ".join(COLUMNS)
    new = ", ".join(f"new.{c}" for c in COLUMNS)
    old = ", ".join(f"old.{c}" for c in COLUMNS)
    # Names are this module's constants, never input.
    delete_old = f"INSERT INTO {FTS}({FTS}, rowid, {columns}) VALUES ('delete', old.message_id, {old});"  # noqa: S608
    insert_new = f"INSERT INTO {FTS}(rowid, {columns}) VALUES (new.message_id, {new});"  # noqa: S608
    return [
        f"CREATE TRIGGER search_doc_ai AFTER INSERT ON {DOC} BEGIN {insert_new} END",
        f"CREATE TRIGGER search_doc_ad AFTER DELETE ON {DOC} BEGIN {delete_old} END",
        f"CREATE TRIGGER search_doc_au AFTER UPDATE ON {DOC} BEGIN {delete_old} {insert_new} END",
    ]


def drop_triggers_sql() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]


REBUILD_SQL = f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')"  # noqa: S608
