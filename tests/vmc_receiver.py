"""A VMC receiver for the tests: python-osc's UDP server on 127.0.0.1 in a thread, recording every
message (bundles are unpacked by the server) in arrival order."""
from __future__ import annotations

import socket
import threading
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

RECEIVE_BUFFER_BYTES = 8 << 20  # a whole take's datagrams may arrive before the test reads them
POLL_S = 0.05                   # how often the server thread checks for shutdown


class Receiver:
    """`port` to send to; `messages` [(address, args)]; `wait_for(n)`; `close()`."""

    def __init__(self):
        self.messages: list[tuple[str, tuple]] = []
        d = Dispatcher()
        d.set_default_handler(lambda address, *args: self.messages.append((address, args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
        self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": POLL_S},
                                       daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 30.0) -> None:
        """Until n messages have arrived or timeout seconds have passed."""
        end = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.01)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
