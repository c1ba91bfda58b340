"""wss:// interop check with Python's `websockets` (and `ssl`, `urllib`):
the client trusts only the test CA and verifies the host name.

    python3 client.py WSS_URL CA_FILE

Prints PASS/FAIL lines; exits 1 if any check failed.
"""

import asyncio
import ssl
import sys
import urllib.request

import websockets

URL, CA = sys.argv[1], sys.argv[2]
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + "python " + name + (f": {detail}" if detail else ""), flush=True)


def context():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def main():
    ctx = context()
    async with websockets.connect(URL, ssl=ctx, max_size=8 << 20) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        check("tls version", tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version())
        check("alpn", tls.selected_alpn_protocol() == "http/1.1", str(tls.selected_alpn_protocol()))
        await ws.send("hello över wss")
        got = await ws.recv()
        check("text echo", got == "hello över wss", repr(got)[:60])
        for n in (0, 125, 126, 65535, 65536, 1 << 20):
            data = bytes((i * 31 + n) & 0xFF for i in range(n))
            await ws.send(data)
            got = await ws.recv()
            check(f"binary echo {n} B", got == data, f"{len(got)} bytes back")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        check("ping answered", True)
        await ws.close(1000, "bye")
        check("close 1000 answered", ws.close_code == 1000, f"close code {ws.close_code}")
    # The TLS 1.2 path too.
    ctx12 = context()
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    async with websockets.connect(URL, ssl=ctx12) as ws:
        await ws.send("over 1.2")
        check("TLS 1.2 echo", await ws.recv() == "over 1.2")
    https = URL.replace("wss://", "https://", 1).split("/", 3)
    base = "/".join(https[:3])
    with urllib.request.urlopen(base + "/healthz", context=context(), timeout=5) as r:
        body = r.read()
        check("https /healthz", r.status == 200 and body == b"ok\n", f"{r.status} {body!r}")
    with urllib.request.urlopen(base + "/metrics", context=context(), timeout=5) as r:
        text = r.read().decode()
        check("https /metrics", 'wsd_tls_handshake_failures_total{reason="alert"}' in text)


try:
    asyncio.run(asyncio.wait_for(main(), 30))
except Exception as e:  # any failure is a failed check, with its reason
    check("run", False, f"{type(e).__name__}: {e}")
sys.exit(0 if results and all(results) else 1)
