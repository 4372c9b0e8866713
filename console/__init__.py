"""trust-console: an outbound-only trust agent for FLIP hubs, with an operator console."""

import sys

__version__ = "0.1.0"

# httpx imports its optional command-line client, and with it click, rich and pygments (about 6 MB),
# whenever those are installed, as they are beside Textual and uvicorn. trust-console never uses that
# client, and a headless agent runs all day, so the import is turned into the ImportError that httpx
# (0.28) already handles. The console still loads rich for Textual.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
