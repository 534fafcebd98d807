"""``python -m composer_agent``: the ``composer-agent`` command."""

import sys

from composer_agent.cli import main

sys.exit(main())
