"""Make the official ``antithesis`` package importable (a helper_ file: never run).

On the local and netns backends drivers run with composer's virtualenv Python, which has
``antithesis`` installed. The docker node image has no ``antithesis`` package, but
composer's sources (and so its ``.venv``) are mounted at the same path in every
container and are on ``$PYTHONPATH``: the pure-Python package is taken from there.
Import this module before ``antithesis``.
"""

import glob
import os
import sys

try:
    import antithesis  # noqa: F401
except ImportError:
    for root in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        found = sorted(glob.glob(os.path.join(root, ".venv", "lib", "python3*",
                                              "site-packages", "antithesis")))
        if found:
            sys.path.append(os.path.dirname(found[-1]))
            break
    import antithesis  # noqa: F401  (ImportError here: install antithesis==0.4.0)
