"""``python -m bal.pools pack|score ...`` (see :mod:`bal.cli_pool`; for ``srun``, see :mod:`bal.pools.distributed`)."""

import os
import sys

from bal.cli_pool import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as `bal`: no interpreter teardown racing XLA threads
