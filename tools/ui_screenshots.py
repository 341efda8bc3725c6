"""Screenshots of the Dagster UI on the CLI's instance, with headless Chromium.

    python tools/ui_screenshots.py [--out DIR] [--asset verified_envs] [--port 3333]

Starts `envfactory ui --no-daemon` on `$ENVFACTORY_HOME` (run `envfactory materialize` first),
then saves the asset graph, one asset's page and one of its checks' page as PNG files in `--out`
(default `$ENVFACTORY_HOME/screenshots`). Needs `chromium` (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from envfactory_dagster.settings import envfactory_home

CHECKS = """query Checks($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
  ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name } } } } } }"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]


def wait_for(port: int, server: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("error: the webserver did not start") from None
            time.sleep(0.5)


def screenshot(browser: str, url: str, target: Path, wait_ms: int) -> None:
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1600,1000", f"--virtual-time-budget={wait_ms}", f"--screenshot={target}", url],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180,
    )  # fmt: skip
    print(f"{target}  <- {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="directory for the PNG files")
    parser.add_argument("--asset", default="verified_envs", help="asset whose page and check are shot")
    parser.add_argument("--port", type=int, default=3333)
    parser.add_argument("--wait-ms", type=int, default=25000, help="time the page gets to render")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("error: no chromium on PATH (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    home = envfactory_home()
    out = Path(args.out or Path(home) / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "envfactory_dagster.cli", "ui", "--no-daemon", "--port", str(args.port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(args.port, server)
        node = graphql(args.port, CHECKS, {"key": {"path": [args.asset]}})["assetNodeOrError"]
        checks = node["assetChecksOrError"]["checks"]
        base = f"http://127.0.0.1:{args.port}"
        pages = {
            "asset_graph.png": f"{base}/asset-groups",
            f"asset_{args.asset}.png": f"{base}/assets/{args.asset}",
            f"asset_{args.asset}_partitions.png": f"{base}/assets/{args.asset}?view=partitions",
        }
        if checks:
            name = checks[0]["name"]
            pages[f"check_{args.asset}_{name}.png"] = (
                f"{base}/assets/{args.asset}?view=checks&checkDetail={name}"
            )
        for file_name, url in pages.items():
            screenshot(browser, url, out / file_name, args.wait_ms)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
