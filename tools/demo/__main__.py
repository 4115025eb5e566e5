"""``python -m deeplandcover.tools.demo`` (``make demo``): runs :func:`.run.main`."""

import sys

from .run import main

sys.exit(main())
