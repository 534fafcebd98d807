"""``python3 -m pbstore --listen HOST:PORT --peers A,B,C --data DIR``."""

from .server import main

main()
