"""``python3 -m ledger --listen HOST:PORT --data DIR``."""

from .server import main

main()
