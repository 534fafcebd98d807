"""``python3 -m leaderkv --listen HOST:PORT --peers A,B,C --data DIR``."""

from .server import main

main()
