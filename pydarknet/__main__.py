"""``python -m pydarknet ...``: the ``pydarknet`` command."""

import sys

from .cli import main

sys.exit(main())
