#!/usr/bin/env python3
"""Publishing through the HTTP API against publishing over WebSocket.

    benches/api_publish.py [--rate N] [--duration S] [--subscribers N] [--rounds N]

wsd (release, broadcast, --api-key) is pinned to CPU 0; `wsload conns`
holds the subscribers of room /bench (they read and count every delivery)
on CPU 1, and 8 publisher threads of this script share CPU 1 with them.
Each round runs the same load twice, interleaved: 8 keep-alive HTTP
connections sending `POST /publish/bench` (64 B, text/plain), then 8
WebSocket connections sending the same messages as masked text frames
into /bench. Both are paced to the same total rate (an open loop: a
publisher that falls behind sends at once to catch up), so the figures
compare the server's cost per message, not this client's speed.

Measured over each run's window, from the server's /proc/PID/stat (user +
system CPU) and /metrics (messages received, published through the API,
sent): CPU per published message and per delivery. The API run's
publishes per second are also reported when --rate 0 (as fast as 8
keep-alive connections of this client go).

Everything runs on 127.0.0.1; every process it starts is stopped by PID.
"""

import argparse
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
WSD = os.path.join(TARGET, "release", "wsd")
WSLOAD = os.path.join(TARGET, "release", "wsload")
KEY = "bench-key-0123456789abcdef"
PAYLOAD = b"x" * 64
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    out = {}
    for line in body.splitlines():
        m = re.match(r"^(wsd_[a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def http_publisher(port, rate, stop, counts, i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "text/plain"}
    start, n = time.monotonic(), 0
    while not stop.is_set():
        if rate:
            due = start + n / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        c.request("POST", "/publish/bench", body=PAYLOAD, headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"publish answered {r.status}")
        n += 1
    counts[i] = n
    c.close()


def ws_frame(payload):
    mask = os.urandom(4)
    masked = bytes(b ^ mask[j % 4] for j, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def ws_publisher(port, rate, stop, counts, i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"GET /bench HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"upgrade refused: {head[:40]!r}")
    # A publisher in the room gets every message too: drain it unread.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    def drain():
        try:
            while s.recv(1 << 16):
                pass
        except OSError:
            pass  # closed at the end of the run

    threading.Thread(target=drain, daemon=True).start()
    start, n = time.monotonic(), 0
    while not stop.is_set():
        if rate:
            due = start + n / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        s.sendall(ws_frame(PAYLOAD))
        n += 1
    counts[i] = n
    s.shutdown(socket.SHUT_RDWR)
    s.close()


def run(kind, port, pid, rate, duration, publishers=8):
    stop = threading.Event()
    counts = [0] * publishers
    target = http_publisher if kind == "api" else ws_publisher
    per = rate / publishers if rate else 0
    threads = [
        threading.Thread(target=target, args=(port, per, stop, counts, i)) for i in range(publishers)
    ]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm-up: connections up, rates settled
    m0, c0, t0 = metrics(port), cpu_seconds(pid), time.monotonic()
    time.sleep(duration)
    m1, c1, t1 = metrics(port), cpu_seconds(pid), time.monotonic()
    stop.set()
    for t in threads:
        t.join()
    d = lambda k: m1.get(k, 0) - m0.get(k, 0)
    published = d("wsd_api_published_total") if kind == "api" else d("wsd_messages_received_total")
    sent = d("wsd_messages_sent_total")
    cpu = c1 - c0
    return {
        "kind": kind,
        "published_per_s": published / (t1 - t0),
        "deliveries_per_s": sent / (t1 - t0),
        "cpu_us_per_message": 1e6 * cpu / max(published, 1),
        "cpu_ns_per_delivery": 1e9 * cpu / max(sent, 1),
        "cpu_share": cpu / (t1 - t0),
    }


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000, help="publishes/s in all; 0: as fast as possible (API only)")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    port = free_port()
    keyfile = tempfile.NamedTemporaryFile("w", delete=False)
    keyfile.write(KEY + "\n")
    keyfile.close()
    wsd = subprocess.Popen(
        ["taskset", "-c", "0", WSD, "--listen", f"127.0.0.1:{port}", "--mode", "broadcast",
         "--ping-interval", "off", "--api-key", keyfile.name, "--log-level", "warn"],
        stdout=subprocess.DEVNULL,
    )
    subs = None
    try:
        time.sleep(0.5)
        subs = subprocess.Popen(
            ["taskset", "-c", "1", WSLOAD, "conns", f"ws://127.0.0.1:{port}/bench",
             "-c", str(a.subscribers), "-d", f"{int(a.rounds * 2 * (a.duration + 3) + 30)}s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.sched_setaffinity(0, {1})
        until = time.monotonic() + 60
        while metrics(port).get("wsd_connections_open", 0) < a.subscribers:
            if time.monotonic() > until:
                raise SystemExit("subscribers did not connect")
            time.sleep(0.2)
        results = []
        for _ in range(a.rounds):
            results.append(run("api", port, wsd.pid, a.rate, a.duration))
            if a.rate:
                results.append(run("ws", port, wsd.pid, a.rate, a.duration))
        for r in results:
            print(
                f"{r['kind']:>3}: {r['published_per_s']:8.0f} publishes/s, "
                f"{r['deliveries_per_s']:10.0f} deliveries/s, "
                f"{r['cpu_us_per_message']:7.2f} us CPU/message, "
                f"{r['cpu_ns_per_delivery']:6.1f} ns CPU/delivery, "
                f"server CPU {100 * r['cpu_share']:.0f}%"
            )
        if a.rate:
            api = [r["cpu_us_per_message"] for r in results if r["kind"] == "api"]
            ws = [r["cpu_us_per_message"] for r in results if r["kind"] == "ws"]
            print(f"API/WebSocket CPU per message: {min(api) / min(ws):.2f}x (best of each)")
    finally:
        for p in (subs, wsd):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        os.unlink(keyfile.name)


if __name__ == "__main__":
    sys.exit(main())
