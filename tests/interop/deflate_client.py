"""Interop check of wsd's permessage-deflate against the Python `websockets`
client (tests/interop/deflate.sh runs it in its own venv).

usage: deflate_client.py ws://127.0.0.1:PORT

Connects with several permessage-deflate offers, checks what the server
answered, and echoes text and binary messages from 0 B to 1 MiB through
each connection. Prints one line per offer and `interop: N passed, M failed`
last; exits 1 on any failure.
"""
import os
import random
import sys

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

SIZES = [0, 1, 2, 63, 64, 127, 128, 129, 1000, 4096, 65535, 65536, 65537, 300_000, 1 << 20]

# (name, client factory arguments, parameters the answer must name)
OFFERS = [
    ("default offer", dict(client_max_window_bits=True), set()),
    ("bare offer", dict(client_max_window_bits=None), set()),
    (
        "server_max_window_bits=10",
        dict(server_max_window_bits=10, client_max_window_bits=True),
        {"server_max_window_bits=10"},
    ),
    (
        "server_max_window_bits=9, client_max_window_bits=12",
        dict(server_max_window_bits=9, client_max_window_bits=12),
        {"server_max_window_bits=9"},
    ),
    (
        "both no_context_takeover",
        dict(server_no_context_takeover=True, client_no_context_takeover=True),
        {"server_no_context_takeover", "client_no_context_takeover"},
    ),
]


def payloads():
    rng = random.Random(7)
    words = ["price", "quantity", "\"id\":", "κόσμε", "😀", "{", "}", ", ", "name"]
    for n in SIZES:
        text = "".join(rng.choice(words) for _ in range(n))
        text = text.encode()[:n].decode("utf-8", "ignore")
        yield text
        # Half repetitive, half random: some compresses, some does not.
        yield bytes(rng.randrange(4) for _ in range(n // 2)) + os.urandom(n - n // 2)


def check(url, name, kwargs, must_name):
    ext = ClientPerMessageDeflateFactory(**kwargs)
    with connect(url, extensions=[ext], compression=None, max_size=2 << 20,
                 open_timeout=10, close_timeout=10) as ws:
        answer = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        params = {p.strip() for p in answer.split(";")[1:]}
        if not answer.startswith("permessage-deflate"):
            raise AssertionError("not negotiated: %r" % answer)
        if not must_name <= params:
            raise AssertionError("answer %r lacks %s" % (answer, must_name - params))
        count = 0
        for msg in payloads():
            ws.send(msg)
            back = ws.recv(timeout=20)
            if back != msg:
                raise AssertionError("%s of %d: echo differs" % (type(msg).__name__, len(msg)))
            count += 1
    return "%s: %r, %d messages echoed" % (name, answer, count)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    url = sys.argv[1]
    passed = failed = 0
    for name, kwargs, must_name in OFFERS:
        try:
            print("interop: ok   " + check(url, name, kwargs, must_name))
            passed += 1
        except Exception as e:  # noqa: BLE001 - report every failure
            print("interop: FAIL %s: %s: %s" % (name, type(e).__name__, e))
            failed += 1
    print("interop: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
