"""``python -m spacy_infnet COMMAND``: the command line of :mod:`spacy_infnet.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
