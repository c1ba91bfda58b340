#!/usr/bin/env python3
"""Time to serve ?rewind=N to many connections joining at once.

Usage: history_rewind.py HOST:PORT JOINERS N

Fills room /rewind-bench with N messages of 32 B (a member sends them and
reads them back), then opens JOINERS connections, sends every upgrade
request for /rewind-bench?rewind=N at once, and waits until each has its
101 and N messages. Prints the time from the first request to the last
connection served, and checks each got exactly N messages (no live one
can come: nobody sends meanwhile).
"""
import os, selectors, socket, sys, time

def frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body

def request(path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()

def frames_in(buf: bytes):
    """Counts whole server frames (unmasked, short) in buf; returns (count, used)."""
    n = used = 0
    while len(buf) - used >= 2:
        ln = buf[used + 1] & 0x7F
        head = 2 + (2 if ln == 126 else 8 if ln == 127 else 0)
        if ln >= 126:
            if len(buf) - used < head:
                break
            ln = int.from_bytes(buf[used + 2:used + head], "big")
        if len(buf) - used < head + ln:
            break
        used += head + ln
        n += 1
    return n, used

def main():
    host, port = sys.argv[1].rsplit(":", 1)
    joiners, n = int(sys.argv[2]), int(sys.argv[3])
    addr = (host, int(port))
    room = "/rewind-bench"
    m = socket.create_connection(addr)
    m.sendall(request(room))
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += m.recv(4096)
    buf = buf.split(b"\r\n\r\n", 1)[1]
    m.sendall(b"".join(frame(b"%032d" % i) for i in range(n)))
    got = 0
    while got < n:
        buf += m.recv(65536)
        k, used = frames_in(buf)
        got += k
        buf = buf[used:]
    socks = [socket.create_connection(addr) for _ in range(joiners)]
    sel = selectors.DefaultSelector()
    state = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        state[s] = [b"", False, 0]
    req = request(f"{room}?rewind={n}")
    start = time.perf_counter()
    for s in socks:
        s.send(req)
    left = joiners
    deadline = start + 60
    while left and time.perf_counter() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            st = state[s]
            data = s.recv(1 << 20)
            if not data:
                sys.exit("a joiner was closed")
            st[0] += data
            if not st[1]:
                if b"\r\n\r\n" not in st[0]:
                    continue
                head, st[0] = st[0].split(b"\r\n\r\n", 1)
                assert head.startswith(b"HTTP/1.1 101"), head[:40]
                st[1] = True
            k, used = frames_in(st[0])
            st[2] += k
            st[0] = st[0][used:]
            if st[2] >= n:
                assert st[2] == n, st[2]
                sel.unregister(s)
                left -= 1
    took = time.perf_counter() - start
    if left:
        sys.exit(f"{left} joiners not served in 60 s")
    print(f"{joiners} joins with ?rewind={n}: all served in {took * 1000:.0f} ms "
          f"({joiners * n / took:.0f} messages/s, client included)")
    for s in socks + [m]:
        s.close()

main()
