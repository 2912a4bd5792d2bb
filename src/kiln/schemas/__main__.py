"""``python -m kiln.schemas [FOLDER]``: regenerate the published JSON Schemas."""

from __future__ import annotations

import sys
from pathlib import Path

from kiln.schemas import write_schemas

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("schema/public")
for path in write_schemas(folder):
    print(path)
