"""``python3 -m lease lock|store|worker --listen HOST:PORT ...`` (see README.md)."""

from .cli import main

main()
