"""``@rawhttp``, ``AMLRequest`` and ``AMLResponse`` for scoring scripts (Kiln's stand-ins)."""
