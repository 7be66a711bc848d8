"""A real web server and a real browser for the tests of the page: the application on
werkzeug's server in a thread on 127.0.0.1, and Debian's headless ``chromium``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() == "true"
#: A directory to copy the screenshots to, besides the test's temporary directory.
SCREENSHOTS = os.environ.get("MASTERTRAIL_SCREENSHOTS")


def need_chromium() -> str:
    """The browser, or a skip (a failure with CI=true: .ci/run installs it)."""
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI=true and chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a free port of 127.0.0.1 while the block runs; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def chromium(profile: Path, *args: str, javascript: bool = True) -> str:
    """Run headless chromium with ``args``; its stdout. With ``javascript`` off the profile
    blocks scripts as a person's browser setting does (the content setting, not a flag:
    headless chromium's ``--dump-dom`` needs the page's scripting itself)."""
    if not javascript:
        (profile / "Default").mkdir(parents=True, exist_ok=True)
        blocked = {"profile": {"default_content_setting_values": {"javascript": 2}}}
        (profile / "Default" / "Preferences").write_text(json.dumps(blocked))
    command = [
        need_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def dump_dom(profile: Path, url: str, *, javascript: bool = True) -> str:
    """The DOM of ``url`` after the page loaded (scripts run, unless ``javascript`` is off)."""
    return chromium(profile, "--virtual-time-budget=3000", "--dump-dom", url, javascript=javascript)


def screenshot(profile: Path, url: str, out: Path, *, width: int, height: int) -> Path:
    """A PNG of ``url`` at a window of ``width`` x ``height``, kept at ``out`` (and copied to
    ``$MASTERTRAIL_SCREENSHOTS`` when set)."""
    chromium(
        profile,
        "--virtual-time-budget=10000",
        f"--screenshot={out}",
        f"--window-size={width},{height}",
        url,
    )
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(SCREENSHOTS) / out.name)
    return out


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    header = path.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
