"""``python -m mlpipe_jupyter.cli``: the ``mlpipe`` command."""
import sys

from mlpipe_jupyter.cli import main

sys.exit(main())
