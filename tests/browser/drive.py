#!/usr/bin/env python3
"""Drives headless Chromium against wsd's page and checks what the pages see.

Usage: drive.py CHROMIUM ECHO_BASE BROADCAST_BASE TLS_BASE DEFLATE_BASE
(bases like http://127.0.0.1:PORT; TLS_BASE is an echo server over
https://, whose throwaway certificate Chromium is told to accept with
--ignore-certificate-errors; DEFLATE_BASE an echo server with --deflate).
Prints one `PASS name` or
`FAIL name: why` line per check; run.sh counts them.

Chromium is driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: commands in on fd 3, answers out on fd 4, each a
JSON text ended by NUL), so no port is opened and the standard library is
enough. Every wait has a deadline; the browser is closed, and its process
group killed, whatever happens.
"""

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # Several pages run at once; none may be throttled as a background tab.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--remote-debugging-pipe",
    # The TLS check's server has a throwaway certificate.
    "--ignore-certificate-errors",
]

# What a page records: its connection state and every message it received.
STATE_JS = """JSON.stringify({
  state: document.body ? document.body.dataset.state || '' : '',
  status: (document.getElementById('status') || {}).textContent || '',
  received: Array.from(document.querySelectorAll('#received li'), li => li.dataset.text),
})"""


class Browser:
    """One Chromium with a fresh profile, spoken to over the pipe."""

    def __init__(self, chromium, log):
        self.profile = tempfile.mkdtemp(prefix="wsd-browser-")
        # The shell moves our stdin/stdout pipes to fds 3/4 and execs
        # Chromium in a session of its own, so its helpers can be ended with
        # it by its group id.
        self.proc = subprocess.Popen(
            ["sh", "-c", 'exec "$@" 3<&0 4>&1 </dev/null >/dev/null', "sh",
             chromium, *FLAGS, "--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True)
        self.next_id = 0
        self.buf = b""

    def call(self, method, params=None, session=None, timeout=10.0):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if "method" in reply and "id" not in reply:
                    self.on_event(reply)
                elif reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{method}: no answer in {timeout}s")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    raise RuntimeError(f"{method}: browser exited ({self.proc.poll()})")
                self.buf += chunk

    def on_event(self, event):
        """An event the browser sent while a call waited: dropped here."""

    def open(self, url):
        """Opens `url` in a new page; returns the page's session."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        return self.call("Target.attachToTarget",
                         {"targetId": target, "flatten": True})["sessionId"]

    def eval(self, session, expr):
        result = self.call("Runtime.evaluate",
                           {"expression": expr, "returnByValue": True}, session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expr}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def state(self, session):
        return json.loads(self.eval(session, STATE_JS) or "{}")

    def wait(self, session, what, cond, timeout=10.0):
        """Polls a page until `cond(state)` holds; returns the state, or
        raises with the last state seen."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(session)
            if cond(st):
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not seen in {timeout}s; page: {st}")
            time.sleep(0.1)

    def close(self):
        try:
            self.call("Browser.close", timeout=3)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        subprocess.run(["rm", "-rf", self.profile], check=False)


def check_echo(browser, base):
    """A page on an echo server: type a message, press Enter, see it back."""
    page = browser.open(base + "/?connect")
    browser.wait(page, "connection", lambda st: st.get("state") == "open")
    text = 'echo <b>&amp; "quotes" \u00e9'
    # Typed and sent with Enter, as trusted input events.
    browser.eval(page, "document.getElementById('msg').focus()")
    browser.call("Input.insertText", {"text": text}, page)
    enter = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
    browser.call("Input.dispatchKeyEvent", {"type": "keyDown", "text": "\r", **enter}, page)
    browser.call("Input.dispatchKeyEvent", {"type": "keyUp", **enter}, page)
    browser.wait(page, "the echo", lambda st: text in st["received"])
    # Escaped, not parsed: the log shows the text and holds no <b> element.
    shown = browser.eval(page, "document.getElementById('log').textContent")
    bold = browser.eval(page, "document.querySelectorAll('#log b').length")
    if text not in shown or bold != 0:
        raise AssertionError(f"log shows {shown!r}, {bold} <b> elements")


def check_tls(browser, base):
    """The page over https: it connects with wss:// and its echo works."""
    check_echo(browser, base)
    page = browser.open(base + "/?connect")
    browser.wait(page, "connection", lambda st: st.get("state") == "open")
    scheme = browser.eval(page, "location.protocol")
    if scheme != "https:":
        raise AssertionError(f"the page was loaded over {scheme!r}")


def check_rooms(browser, base):
    """A and B in /r1 see each other; C in /r2, connected all along, sees
    only its own messages."""
    c = browser.open(base + "/?room=/r2&auto=C")
    browser.wait(c, "C's own message", lambda st: "hello from C" in st["received"])
    a = browser.open(base + "/?room=/r1&auto=A")
    b = browser.open(base + "/?room=/r1&auto=B")
    browser.wait(a, "B's message at A", lambda st: "hello from B" in st["received"])
    browser.wait(b, "A's message at B", lambda st: "hello from A" in st["received"])
    # C keeps sending every 300 ms; give it a moment past A and B.
    time.sleep(0.5)
    st = browser.state(c)
    others = sorted({m for m in st["received"] if m != "hello from C"})
    if others or st.get("state") != "open":
        raise AssertionError(f"C in /r2 saw {others}, state {st.get('state')!r}")


# Opens a WebSocket of the page's own, checks that permessage-deflate was
# agreed, and echoes text and binary messages of every size in SIZES, each
# compared with what was sent. The outcome lands in window.deflateResult.
DEFLATE_JS = """(() => {
  const sizes = %s;
  const ws = new WebSocket('ws://' + location.host + '/');
  ws.binaryType = 'arraybuffer';
  const sent = [];
  let next = 0;
  const fail = why => { window.deflateResult = 'FAIL ' + why; ws.close(); };
  const text = n => {
    let s = '{"seq":' + n + ',"words":[';
    while (s.length < n) s += '"alpha","beta","gamma",';
    return s.slice(0, n);
  };
  const binary = n => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
    return b;
  };
  const sendNext = () => {
    if (next === 2 * sizes.length) {
      window.deflateResult = 'OK ' + ws.extensions;
      ws.close(1000);
      return;
    }
    const n = sizes[next >> 1];
    const m = next %% 2 === 0 ? text(n) : binary(n);
    next++;
    sent.push(m);
    ws.send(m);
  };
  ws.onopen = () => {
    if (!ws.extensions.startsWith('permessage-deflate')) {
      return fail('extensions: ' + JSON.stringify(ws.extensions));
    }
    sendNext();
  };
  ws.onmessage = e => {
    const want = sent.shift();
    if (typeof want === 'string') {
      if (e.data !== want) return fail('text of ' + want.length + ' B differs');
    } else {
      const got = new Uint8Array(e.data);
      if (got.length !== want.length || got.some((v, i) => v !== want[i])) {
        return fail('binary of ' + want.length + ' B differs');
      }
    }
    sendNext();
  };
  ws.onerror = () => fail('error event');
  ws.onclose = e => {
    if (!window.deflateResult) window.deflateResult = 'FAIL closed ' + e.code;
  };
  return true;
})()"""

DEFLATE_SIZES = [0, 1, 100, 127, 128, 1000, 65535, 65536, 300000, 1 << 20]


def check_deflate(browser, base):
    """Chromium agrees permessage-deflate with wsd --deflate and echoes
    text and binary, 0 B to 1 MiB, compressed both ways."""
    page = browser.open(base + "/")
    deadline = time.monotonic() + 10
    while browser.eval(page, "document.readyState + ' ' + location.protocol") != "complete http:":
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not load in 10s")
        time.sleep(0.1)
    browser.eval(page, DEFLATE_JS % json.dumps(DEFLATE_SIZES))
    deadline = time.monotonic() + 30
    while True:
        result = browser.eval(page, "window.deflateResult || ''")
        if result:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the echoes did not finish in 30s")
        time.sleep(0.1)
    if not result.startswith("OK "):
        raise AssertionError(result)


AUTH_JS = """(() => {
  const url = "ws://" + location.host + "/room";
  const res = {};
  const done = () => {
    if (res.bare && res.token) window.authResult = JSON.stringify(res);
  };
  const bare = new WebSocket(url);
  bare.onopen = () => { res.bare = "opened"; done(); };
  bare.onclose = (e) => { if (!res.bare) { res.bare = "refused " + e.code; done(); } };
  const good = new WebSocket(url + "?token=" + %s);
  good.onopen = () => good.send("with a token");
  good.onmessage = (e) => { res.token = e.data; good.close(); done(); };
  good.onclose = (e) => { if (!res.token) { res.token = "closed " + e.code; done(); } };
})()"""


def check_auth(browser, base, token):
    """Against wsd --auth-key: a WebSocket with `?token=` opens and
    echoes; one without a token is refused before it opens."""
    page = browser.open(base + "/")
    deadline = time.monotonic() + 10
    while browser.eval(page, "document.readyState") != "complete":
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not load in 10s")
        time.sleep(0.1)
    browser.eval(page, AUTH_JS % json.dumps(token))
    deadline = time.monotonic() + 10
    while True:
        result = browser.eval(page, "window.authResult || ''")
        if result:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the two connections did not finish in 10s")
        time.sleep(0.1)
    got = json.loads(result)
    want = {"bare": "refused 1006", "token": "with a token"}
    if got != want:
        raise AssertionError(f"got {got}, expected {want}")


def main():
    chromium, echo_base, broadcast_base, tls_base, deflate_base = sys.argv[1:6]
    auth_base, token = sys.argv[6:8]
    # A TERM (run.sh's timeout) unwinds like an error, so the browser is
    # still closed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log_path = os.environ.get("CHROMIUM_LOG", os.devnull)
    with open(log_path, "ab") as log:
        browser = Browser(chromium, log)
        failed = 0
        try:
            for name, check, base in [
                ("echo: a typed message comes back", check_echo, echo_base),
                ("rooms: /r1 pages see each other, /r2 sees neither", check_rooms, broadcast_base),
                ("tls: the page over https echoes over wss", check_tls, tls_base),
                ("deflate: Chromium agrees permessage-deflate, 0 B to 1 MiB echo",
                 check_deflate, deflate_base),
                ("auth: ?token= connects and echoes, no token is refused",
                 lambda b, base: check_auth(b, base, token), auth_base),
            ]:
                try:
                    check(browser, base)
                    print(f"PASS {name}", flush=True)
                except Exception as e:
                    failed += 1
                    print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        finally:
            browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
