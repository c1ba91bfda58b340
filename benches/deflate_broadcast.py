#!/usr/bin/env python3
"""Server CPU per broadcast delivery, permessage-deflate on and off.

usage: benches/deflate_broadcast.py [--wsd PATH] [--subscribers N] [--messages M]
                                    [--size BYTES]

Starts `wsd --mode broadcast` twice (plain, then --deflate), connects N
subscribers (offering permessage-deflate in the second run) and one
publisher, publishes M distinct JSON-like text messages of SIZE bytes in
batches, waits until every subscriber has every message, and reports the
server's CPU time (utime + stime from /proc) per delivery and the bytes
on the wire per delivery. Python 3 standard library only; loopback only.
The client side (this script) is the slow side: the figure is the
server's CPU, not throughput.
"""
import argparse
import base64
import os
import random
import selectors
import socket
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def upgrade(port, offer):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "Sec-WebSocket-Extensions: %s\r\n" % offer if offer else ""
    s.sendall(("GET /room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n%s\r\n" % (key, extra)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("upgrade refused")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.decode(errors="replace"))
    if offer and b"permessage-deflate" not in head:
        raise RuntimeError("deflate not agreed: %r" % head)
    s.setblocking(False)
    return s, rest


def masked_text(payload):
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


class Sub:
    """Counts whole frames from the server (unmasked, never fragmented here)."""

    def __init__(self, sock, rest):
        self.sock, self.buf, self.frames, self.bytes = sock, bytearray(rest), 0, 0

    def read(self):
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                raise RuntimeError("server closed a subscriber")
            self.bytes += len(chunk)
            self.buf += chunk
        while len(self.buf) >= 2:
            n, at = self.buf[1] & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, at = int.from_bytes(self.buf[2:4], "big"), 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, at = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < at + n:
                break
            if self.buf[0] & 0x0F in (1, 2):
                self.frames += 1
            del self.buf[:at + n]


def json_like(size, rng):
    out = []
    while sum(map(len, out)) < size:
        i = rng.randrange(100000)
        out.append('{"id":%d,"symbol":"S%d","price":%d.%02d,"qty":%d,"side":"%s"},'
                   % (i, i % 97, i % 1000, i % 100, i % 13, "buy" if i % 2 else "sell"))
    return "".join(out)[:size].encode()


def run(wsd, flags, offer, subscribers, messages, size):
    proc = subprocess.Popen([wsd, "--listen", "127.0.0.1:0", "--mode", "broadcast",
                             "--exclude-sender", "--ping-interval", "off"] + flags,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = proc.stdout.readline()
        port = int(banner.split("127.0.0.1:")[1].split()[0].rstrip(","))
        sel = selectors.DefaultSelector()
        subs = []
        for _ in range(subscribers):
            s, rest = upgrade(port, offer)
            sub = Sub(s, rest)
            subs.append(sub)
            sel.register(s, selectors.EVENT_READ, sub)
        pub, _ = upgrade(port, "")
        pub.setblocking(True)
        rng = random.Random(1)
        payloads = [json_like(size, rng) for _ in range(messages)]
        time.sleep(0.2)
        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        sent = 0
        deadline = time.time() + 600
        while sent < messages:
            batch = payloads[sent:sent + 20]
            pub.sendall(b"".join(masked_text(p) for p in batch))
            sent += len(batch)
            # Drain until every subscriber has everything so far: no
            # subscriber ever backs up to the slow-consumer limit.
            while min(s.frames for s in subs) < sent:
                if time.time() > deadline:
                    raise RuntimeError("timed out")
                for key, _ in sel.select(timeout=1):
                    key.data.read()
        cpu = cpu_seconds(proc.pid) - cpu0
        wall = time.time() - t0
        deliveries = messages * subscribers
        wire = sum(s.bytes for s in subs) / deliveries
        return cpu, wall, deliveries, wire
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wsd", default="target/release/wsd")
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--size", type=int, default=1024)
    a = ap.parse_args()
    for name, flags, offer in [("plain", [], ""),
                               ("deflate", ["--deflate"], "permessage-deflate; client_max_window_bits")]:
        cpu, wall, n, wire = run(a.wsd, flags, offer, a.subscribers, a.messages, a.size)
        print("%-8s %d subscribers x %d messages of %d B: server CPU %.2f s, "
              "%.2f us per delivery, %.0f B per delivery on the wire (%.1f s wall)"
              % (name, a.subscribers, a.messages, a.size, cpu, cpu * 1e6 / n, wire, wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
