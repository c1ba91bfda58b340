#!/usr/bin/env python3
"""Opens a `wsload compare --html` report in headless Chromium and checks it.

Usage: report.py CHROMIUM REPORT.html SCENARIOS CHARTS SCREENSHOT.png
Prints one `PASS name` or `FAIL name: why` line per check; report.sh
counts them. SCENARIOS and CHARTS are how many sections and charts the
report must hold. The page is laid out 1,200 px wide, where each results
table's two ratio columns (the headline) must show without scrolling. The
full page is saved as a PNG at SCREENSHOT.png.

Chromium is driven as in drive.py (DevTools over a pipe); this driver also
keeps the events the page sends, to see console errors and exceptions.
"""

import base64
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drive import Browser  # noqa: E402


class Recording(Browser):
    """A Browser that keeps every event instead of dropping it."""

    def __init__(self, chromium, log):
        super().__init__(chromium, log)
        self.events = []

    def on_event(self, event):
        self.events.append(event)

    def errors(self):
        """Console errors, uncaught exceptions and failed loads seen so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p.get('type')}: {p.get('args')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out


# Per chart: its name, how many drawn elements it holds, its rendered size.
CHARTS_JS = """JSON.stringify(Array.from(document.querySelectorAll('figure'), f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {
    name: f.dataset.chart || '',
    drawn: svg ? svg.querySelectorAll('polyline, rect, circle, line, path, polygon').length : 0,
    texts: svg ? svg.querySelectorAll('text').length : 0,
    width: box.width, height: box.height,
  };
}))"""

# Per results table at the page's width: where its ratio columns (headed
# "... ÷ NAME") end, against the right edge its scrolling box shows.
RATIOS_JS = """JSON.stringify(Array.from(document.querySelectorAll('section div.scroll'), box => {
  const seen = box.getBoundingClientRect();
  const ratios = Array.from(box.querySelectorAll('table.results th'))
    .filter(th => th.textContent.includes('\u00f7'));
  return {
    ratios: ratios.length,
    hidden: ratios.filter(th => {
      const r = th.getBoundingClientRect();
      return r.right > seen.left + box.clientWidth + 0.5 || r.left < seen.left - 0.5;
    }).map(th => th.textContent),
    overflow: box.scrollWidth - box.clientWidth,
  };
}))"""

PAGE_JS = """JSON.stringify({
  ready: document.readyState,
  title: document.title,
  sections: document.querySelectorAll('section').length,
  tables: document.querySelectorAll('section table.results tbody tr').length,
})"""


def main():
    chromium, report, scenarios, charts, shot = sys.argv[1:6]
    scenarios, charts = int(scenarios), int(charts)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log_path = os.environ.get("CHROMIUM_LOG", os.devnull)
    failed = 0

    def check(name, ok, why):
        nonlocal failed
        if ok:
            print(f"PASS {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {why}", flush=True)

    with open(log_path, "ab") as log:
        browser = Recording(chromium, log)
        try:
            page = browser.open("about:blank")
            for domain in ("Runtime", "Log", "Page"):
                browser.call(f"{domain}.enable", {}, page)
            browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}, page)
            browser.call("Page.navigate", {"url": "file://" + os.path.abspath(report)}, page)
            deadline = time.monotonic() + 10
            while True:
                st = json.loads(browser.eval(page, PAGE_JS) or "{}")
                if st.get("ready") == "complete" and st.get("title", "").startswith("wsload compare"):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the report did not load: {st}")
                time.sleep(0.1)
            check("report: renders a section and a table per scenario",
                  st["sections"] == scenarios and st["tables"] >= scenarios, f"page: {st}")
            tables = json.loads(browser.eval(page, RATIOS_JS) or "[]")
            check("report: the ratio columns show without scrolling at 1200 px",
                  len(tables) == scenarios
                  and all(t["ratios"] == 2 and not t["hidden"] for t in tables),
                  f"tables: {tables}")
            drawn = json.loads(browser.eval(page, CHARTS_JS) or "[]")
            empty = [c for c in drawn
                     if c["drawn"] < 10 or c["texts"] < 3 or c["width"] < 200 or c["height"] < 100]
            check(f"report: {charts} charts, each a non-empty SVG",
                  len(drawn) == charts and not empty, f"charts: {drawn}")
            # Let late errors (a failed load, a late script) arrive.
            time.sleep(0.3)
            browser.eval(page, "1")
            errors = browser.errors()
            check("report: no console errors", not errors, "; ".join(errors))
            metrics = browser.call("Page.getLayoutMetrics", {}, page)
            size = metrics.get("cssContentSize") or metrics.get("contentSize")
            shot_data = browser.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            }, page, timeout=30)
            with open(shot, "wb") as f:
                f.write(base64.b64decode(shot_data["data"]))
            check("report: screenshot saved", os.path.getsize(shot) > 10000, f"{shot} is too small")
        except Exception as e:
            failed += 1
            print(f"FAIL report: {type(e).__name__}: {e}", flush=True)
        finally:
            browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
