"""The workspace registry: tables, migrations and keyword-only query functions."""
