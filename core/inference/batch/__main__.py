"""``python -m deeplandcover.core.inference.batch``: Classify Pixels (Batch) from the command line (docs/batch.md).

The runner is imported under its package name, so that Dask pickles its task functions by reference, not from
``__main__``.
"""

import sys

from deeplandcover.core.inference.batch.run import main

sys.exit(main())
