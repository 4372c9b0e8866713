"""`python -m bench.isolated REQUEST RESULT`: run one benchmark for `python -m bench` in a process of its own.

REQUEST contains the pickled benchmark name and scale; the pickled result is
written to RESULT.
"""

from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path

from .cli import run_one


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    request, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    name, scale = pickle.loads(request.read_bytes())
    result = run_one(name, scale)
    result_path.write_bytes(pickle.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
