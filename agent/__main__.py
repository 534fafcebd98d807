"""``python -m agent``: the ``composer-agent`` command."""

import sys

from agent.cli import main

sys.exit(main())
