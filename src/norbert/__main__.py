"""``python -m norbert``: the ``norbert`` command (see :mod:`norbert.cli`)."""

import sys

from norbert.cli import main

if __name__ == "__main__":
    sys.exit(main())
