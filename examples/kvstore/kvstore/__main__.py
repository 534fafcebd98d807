"""``python3 -m kvstore --listen HOST:PORT --peers A,B,C --data DIR``."""

from .server import main

main()
