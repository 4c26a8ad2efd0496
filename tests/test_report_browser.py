"""report.html as a browser shows it: headless Chromium opens a small report (fake results, no training) and
finds no console error, every image decoded (naturalWidth > 0) and every in-page link's anchor present.

Chromium is driven over its DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages separated by
NUL bytes on file descriptors 3 and 4), so the check needs no Python package and no browser download: only
Debian's `chromium`, which `.ci/run` installs. Without a chromium binary the test is skipped, unless CI is set:
there it fails. Run with -s to see what the browser saw."""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from jointkl.plots import save_samples
from jointkl.report import write_report
from jointkl.reproduce.base import Result, Row, Table

CHROMIUM = (shutil.which("chromium") or shutil.which("chromium-browser")
            or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]
SEEN = """(() => {
  const ids = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1));
  return {images: [...document.images].map(i => ({alt: i.alt, width: i.naturalWidth, height: i.naturalHeight})),
          sections: [...document.querySelectorAll('h2')].map(h => ({id: h.id, text: h.textContent})),
          links: ids, missing: ids.filter(id => !document.getElementById(id))};
})()"""

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); under CI=true this test fails "
                "instead of skipping", allow_module_level=True)


def above_4(fd: int) -> int:
    """The same pipe end on a descriptor above 4 (close-on-exec), so moving the ends onto 3 and 4 in the child
    can neither clobber one with the other nor leave one a no-op dup2 that stays close-on-exec."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return moved


class Chromium:
    """A headless Chromium spoken to over the DevTools pipe: `call` sends a command and returns its result;
    every event that arrives meanwhile is kept in `events`."""

    def __init__(self, profile: Path, timeout: float = 60.0):
        to_browser, self.outbox = map(above_4, os.pipe())     # we write outbox; Chromium reads its fd 3
        self.inbox, from_browser = map(above_4, os.pipe())    # Chromium writes its fd 4; we read inbox

        def pipes_as_3_and_4():                        # in the child, before exec: the fds Chromium expects
            os.dup2(to_browser, 3)                     # (dup2 makes them inheritable; the sources close at exec)
            os.dup2(from_browser, 4)
        profile.mkdir(parents=True, exist_ok=True)
        self.log = profile / "chromium.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                         preexec_fn=pipes_as_3_and_4, close_fds=False,   # dup2'd fds stay open
                                         stdout=log, stderr=log)
        os.close(to_browser)
        os.close(from_browser)
        self.timeout, self.buffer, self.next_id, self.events = timeout, b"", 0, []

    def _message(self) -> dict:
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.inbox], [], [], self.timeout)
            chunk = os.read(self.inbox, 1 << 16) if ready else b""
            assert chunk, (f"Chromium said nothing for {self.timeout:.0f} s or exited (code {self.proc.poll()}); "
                           f"its log ends: {self.log.read_text(errors='replace')[-2000:]}")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {},
               **({"sessionId": session} if session else {})}
        os.write(self.outbox, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                assert "error" not in reply, (method, reply["error"])
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._message())
        return next(e for e in self.events if e.get("method") == method)

    def close(self):
        try:
            if self.proc.poll() is None:
                self.call("Browser.close")
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:                # it did not close when asked: ours to end
                self.proc.kill()
                self.proc.wait()
            os.close(self.inbox)
            os.close(self.outbox)


def browse(page: Path, profile: Path) -> tuple[dict, list[str]]:
    """Open `page` in a fresh headless Chromium: what the page holds once loaded (`SEEN`), and every error the
    console got (console.error, uncaught exceptions, the browser's own error log: failed loads and the like)."""
    browser = Chromium(profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        seen = browser.call("Runtime.evaluate", {"expression": SEEN, "returnByValue": True},
                            session=session)["result"]["value"]
    finally:
        browser.close()
    errors = []
    for e in browser.events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            errors.append("console." + p["type"] + ": " + " ".join(str(a.get("value")) for a in p["args"]))
        elif e.get("method") == "Runtime.exceptionThrown":
            errors.append("exception: " + p["exceptionDetails"].get("text", ""))
        elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
            errors.append("log: " + p["entry"]["text"])
    return seen, errors


def say(what: str, seen: dict, errors: list[str]) -> None:
    """What the browser saw, for the test's output (-s)."""
    print(f"\n{what}: {len(seen['sections'])} sections, {len(seen['images'])} images, "
          f"{len(seen['links'])} in-page links, {len(errors)} console errors")
    for s in seen["sections"]:
        print(f"  section  #{s['id'] or '(no id)'}: {s['text']}")
    for i in seen["images"]:
        print(f"  image    {i['alt']}: {i['width']}x{i['height']} px")
    for m in seen["missing"]:
        print(f"  link     #{m}: no such anchor")
    for e in errors:
        print(f"  error    {e}")


@pytest.fixture(scope="module")
def chromium_present():
    assert CHROMIUM, "CI is set but no chromium binary is on PATH: .ci/run installs Debian's chromium with apt-get"


def test_report_html_renders_without_errors_with_every_image_and_anchor(tmp_path, chromium_present):
    figure = tmp_path / "quick" / "t-2" / "samples.png"
    save_samples(torch.rand(16, 1, 8, 8), figure, title="samples")
    tables = {t: Table(t, f"table {t}", "protocol text", lambda ctx, out: None) for t in ("t-1", "t-2", "t-3")}
    results = {"t-1": Result([Row("GAN", "modes", [20.0, 22.0, 23.0], 24.0),
                              Row("GAN", "test MSE", [0.1, 0.12], 0.2, better="lower")], "reproduced", "a note"),
               "t-2": Result([Row("VAE", "test ELBO", [-90.0], None)], "not reproduced", figures=[figure]),
               "t-3": Result([], "pending", "not built yet")}
    write_report(tables, results, tmp_path, scale="quick")
    seen, errors = browse(tmp_path / "report.html", tmp_path / "profile")
    say("report.html", seen, errors)
    assert errors == []
    assert [i["alt"] for i in seen["images"]] == ["t-1-vs-paper.png", "samples.png"]
    assert all(i["width"] > 0 and i["height"] > 0 for i in seen["images"])
    assert [s["id"] for s in seen["sections"]] == ["", "t-t-1", "t-t-2", "t-t-3"]      # Contents, then each entry
    assert {"t-t-1", "t-t-2", "t-t-3", "top"} <= set(seen["links"]) and seen["missing"] == []


def test_the_check_sees_a_broken_image_a_missing_anchor_and_a_console_error(tmp_path, chromium_present):
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body id='top'><h2 id='a'>A</h2><a href='#a'>a</a> <a href='#gone'>b</a>"
                    "<img alt='bad' src='data:image/png;base64,AAAA'><script>console.error('boom')</script>"
                    "</body></html>")
    seen, errors = browse(page, tmp_path / "profile")
    say("broken.html", seen, errors)
    assert "console.error: boom" in errors
    assert seen["images"] == [{"alt": "bad", "width": 0, "height": 0}]
    assert seen["missing"] == ["gone"]
