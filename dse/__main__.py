"""``python -m dse``: the same as the ``dse`` command (and ``python -m dse.cli``)."""

import sys

from dse.cli import main

sys.exit(main())
