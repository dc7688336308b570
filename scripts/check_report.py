#!/usr/bin/env python3
"""Open `report.html` in headless Chromium as a reader would, and check it.

    .venv/bin/python scripts/check_report.py                       # a short simulate run, then check its report
    .venv/bin/python scripts/check_report.py --report wattwise-sim/report.html --out /tmp/shots

At each width (a desktop's 1280 px and a phone's 390 px) it loads the page from disk with every
host name unresolvable, waits until plotly has drawn, and checks:
- offline: no request other than the file itself (and data:/blob: URLs) was made;
- every chart drew: each chart's element holds plotly's `.main-svg`, counted in the dumped DOM too;
- each chart's plot area is at least MIN_PLOT_PX tall (a wrapped legend must not squash it);
- legends inside the figure and not scrolled or clipped (every entry inside the legend's box),
  and every other text of a chart (titles, tick labels) inside its figure;
- no JavaScript error or exception in the console;
- the page is no wider than the window (nothing pushes it sideways), and the headline comes first.
It saves a full-page screenshot per width (`report-<width>.png`), the DOM after drawing
(`report-<width>.dom.html`) and, with `--tiles`, the page cut into window-high screenshots.
Chromium is driven over its DevTools pipe (`--remote-debugging-pipe`): no extra package needed.
Exit status 1 when a check fails, 2 when Chromium or the report is missing.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
WIDTHS = ((1280, 900), (390, 844))
MIN_PLOT_PX = 150   # a chart's plot area (inside the axes) at least this tall
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe", "--enable-logging=stderr", "--v=0",
         "--host-resolver-rules=MAP * ~NOTFOUND"]   # nothing resolves: a fetch would fail and be seen

# What the page looks like once drawn: per chart element, plotly's SVG count, the legend's box and
# whether each entry lies inside it, and any text of the chart outside the figure.
INSPECT = r"""
(() => {
  const inside = (b, o, tol) => b.left >= o.left - tol && b.right <= o.right + tol &&
                                b.top >= o.top - tol && b.bottom <= o.bottom + tol;
  const box = b => [b.left, b.top, b.right, b.bottom].map(Math.round);
  const plots = [...document.querySelectorAll('.plot')].map(div => {
    const fig = div.getBoundingClientRect();
    const area = div.querySelector('.draglayer .nsewdrag');
    const r = {id: div.id, mainSvg: div.querySelectorAll('.main-svg').length, figure: box(fig),
               plotHeight: area ? Math.round(area.getBoundingClientRect().height) : null, textsOutside: []};
    const legend = div.querySelector('g.legend');
    if (legend) {
      const lb = legend.getBoundingClientRect();
      const bg = legend.querySelector('rect.bg').getBoundingClientRect();
      const items = [...legend.querySelectorAll('g.traces')].map(t => t.getBoundingClientRect());
      const sb = legend.querySelector('rect.scrollbar');
      r.legend = {box: box(lb), inside: inside(lb, fig, 1), entries: items.length,
                  entriesInside: items.filter(b => b.width > 0 && inside(b, bg, 1)).length,
                  scrollbar: !!sb && sb.getBoundingClientRect().height > 0};
    }
    for (const t of div.querySelectorAll('.main-svg text')) {
      if (t.closest('.hoverlayer') || !t.textContent.trim()) continue;
      const b = t.getBoundingClientRect();
      if (b.width > 0 && !inside(b, fig, 1)) r.textsOutside.push(t.textContent.trim().slice(0, 40));
    }
    return r;
  });
  const first = document.body.firstElementChild;
  return {plots, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
          firstId: first && first.id, headline: first && first.textContent,
          height: Math.ceil(document.documentElement.scrollHeight)};
})()
"""


class DevTools:
    """Chromium's DevTools protocol over the pipe: commands on fd 3, replies and events on fd 4,
    each a JSON message ended by a NUL byte."""

    def __init__(self, width: int, height: int, log_path: Path):
        self.profile = tempfile.mkdtemp(prefix="wattwise-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child_fds():   # fds 3 and 4 in the child, whatever numbers the pipes got here
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     preexec_fn=child_fds, pass_fds=(3, 4))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                break
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._next_id not in self._replies:
                if not self._cond.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"Chromium did not answer {method} in {timeout:g} s")
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if e["method"] == method:
                        return e
                if not self._cond.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"no {method} from Chromium in {timeout:g} s")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def evaluate(dt: DevTools, session: str, expression: str):
    result = dt.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    if "exceptionDetails" in result:
        raise RuntimeError(f"evaluating in the page failed: {result['exceptionDetails'].get('text')}")
    return result["result"].get("value")


def screenshot(dt: DevTools, session: str, path: Path, y: int, width: int, height: int) -> None:
    shot = dt.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                              "clip": {"x": 0, "y": y, "width": width, "height": height, "scale": 1}},
                   session, timeout=60)
    path.write_bytes(base64.b64decode(shot["data"]))


def check_width(report: Path, out: Path, width: int, height: int, tiles: bool) -> tuple[list[str], list[str]]:
    """(problems, notes) at one window width."""
    problems: list[str] = []
    notes: list[str] = []
    dt = DevTools(width, height, out / f"chromium-{width}.log")
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            dt.send(f"{domain}.enable", session=session)
        dt.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                       "mobile": width < 600}, session)
        dt.send("Page.navigate", {"url": report.resolve().as_uri()}, session)
        dt.wait_event("Page.loadEventFired", timeout=60)
        deadline = time.monotonic() + 30
        while True:   # plotly draws after load: wait until every chart has its SVG
            drawn = evaluate(dt, session, "[...document.querySelectorAll('.plot')].map(d => "
                                          "d.querySelectorAll('.main-svg').length > 0)")
            if drawn and all(drawn) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(1.0)   # let responsive relayouts settle
        page = evaluate(dt, session, INSPECT)
        dom = evaluate(dt, session, "document.documentElement.outerHTML")
        (out / f"report-{width}.dom.html").write_text(dom, encoding="utf-8")
        screenshot(dt, session, out / f"report-{width}.png", 0, width, page["height"])
        if tiles:
            for i, y in enumerate(range(0, page["height"], height)):
                screenshot(dt, session, out / f"report-{width}-{i + 1:02d}.png", y, width,
                           min(height, page["height"] - y))
    finally:
        dt.close()

    for e in dt.events:
        p = e.get("params", {})
        if e["method"] == "Network.requestWillBeSent" and not p["request"]["url"].startswith(LOCAL_SCHEMES):
            problems.append(f"network request: {p['request']['url'][:120]}")
        elif e["method"] == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            problems.append(f"JavaScript exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            problems.append("console error: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            problems.append(f"console error ({p['entry']['source']}): {p['entry']['text'][:200]}")
        elif e["method"] == "Runtime.consoleAPICalled" and p["type"] == "warning":
            notes.append("console warning: " + " ".join(str(a.get("value")) for a in p["args"])[:200])

    requests = [e["params"]["request"]["url"] for e in dt.events if e["method"] == "Network.requestWillBeSent"]
    local = [u for u in requests if u.startswith(LOCAL_SCHEMES)]
    notes.append(f"{len(requests)} requests, {len(local)} of them local ({', '.join(sorted({u.split(':')[0] for u in local}))})")
    plots = page["plots"]
    if not plots:
        problems.append("no charts in the page")
    in_dom = len(re.findall(r'<svg[^>]*class="main-svg"', dom))
    notes.append(f"{len(plots)} charts, {in_dom} plotly .main-svg elements in the dumped DOM")
    for p in plots:
        if p["mainSvg"] == 0:
            problems.append(f"chart {p['id']} did not draw (no .main-svg)")
        legend = p.get("legend")
        if legend:
            if not legend["inside"]:
                problems.append(f"chart {p['id']}: legend {legend['box']} outside the figure {p['figure']}")
            if legend["scrollbar"] or legend["entriesInside"] < legend["entries"]:
                problems.append(f"chart {p['id']}: legend clipped ({legend['entriesInside']} of {legend['entries']} "
                                "entries visible)")
        if p["plotHeight"] is not None and p["plotHeight"] < MIN_PLOT_PX:
            problems.append(f"chart {p['id']}: plot area only {p['plotHeight']} px tall (the legend or labels "
                            f"take the rest)")
        if p["textsOutside"]:
            problems.append(f"chart {p['id']}: text outside the figure: {p['textsOutside'][:5]}")
    if page["scrollWidth"] > page["innerWidth"] + 1:
        problems.append(f"the page is {page['scrollWidth']} px wide in a {page['innerWidth']} px window")
    if page["firstId"] != "headline" or not (page["headline"] or "").strip():
        problems.append("the page does not start with the headline sentence")
    else:
        notes.append(f"headline: {page['headline']}")
    return problems, notes


def make_report(out: Path, days: float) -> Path:
    sim = out / "sim"
    cmd = [sys.executable, "-m", "wattwise", "simulate", "--days", f"{days:g}", "--out", str(sim)]
    print("running", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return sim / "report.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="report.html to check (default: make one with a short simulate run)")
    parser.add_argument("--days", type=float, default=0.5, help="days of the short simulate run (default 0.5)")
    parser.add_argument("--out", type=Path, default=Path("wattwise-sim/report-check"),
                        help="where screenshots, DOM dumps and Chromium's logs go (default wattwise-sim/report-check)")
    parser.add_argument("--tiles", action="store_true", help="also save the page cut into window-high screenshots")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"check_report: {CHROMIUM} not found: install it (apt-get install -y chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.report or make_report(args.out, args.days)
    if not report.is_file():
        print(f"check_report: no such file: {report}", file=sys.stderr)
        return 2
    failed = False
    for width, height in WIDTHS:
        problems, notes = check_width(report, args.out, width, height, args.tiles)
        print(f"{width} px: {'FAIL' if problems else 'ok'} (screenshot {args.out / f'report-{width}.png'})")
        for line in notes:
            print(f"  {line}")
        for line in problems:
            print(f"  FAIL {line}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
