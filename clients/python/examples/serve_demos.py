"""Serve the two demo agencies beside a Hawiya IdP: what ``make run`` does.

::

    python clients/python/examples/serve_demos.py [--instance instance] [-- hawiya serve]

It reads what ``hawiya demo`` left in the IdP's instance folder (``demo.json`` for the permits
service's client secret, ``demo-business-key.json`` for the business service's private key), serves
Building permits on http://127.0.0.1:8101 and Business registration on http://127.0.0.1:8102, and,
given a command after ``--``, runs it (the IdP) and stops everything when it ends or on Ctrl-C.

It imports nothing of the IdP: the demos only know Hawiya's URL (``HAWIYA_ISSUER``, default
http://localhost:8000, a different site from 127.0.0.1 as an agency is in production).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
#: (folder, port, client id, name) of each demo; ``hawiya demo`` registers the same ids and ports.
DEMOS = (
    ("permits", 8101, "demo-permits", "Building permits"),
    ("business", 8102, "demo-business", "Business registration"),
)
log = logging.getLogger("serve_demos")


class PathOnlyLog(WSGIRequestHandler):
    """Logs the path, never the query string: the callback's query holds the authorization code."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request: method, path, status."""
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s', self.command, path, code)


def load(folder: str) -> ModuleType:
    """The demo's ``app.py`` as a module (the examples are not a package)."""
    spec = importlib.util.spec_from_file_location(f"hawiya_demo_{folder}", HERE / folder / "app.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"serve_demos: cannot load {folder}/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configs(instance: Path, issuer: str) -> dict[str, dict[str, Any]]:
    """Each demo's settings, from what ``hawiya demo`` wrote into the instance folder."""
    try:
        saved = json.loads((instance / "demo.json").read_text())
    except (OSError, ValueError):
        raise SystemExit(f"serve_demos: no {instance / 'demo.json'}: run `hawiya demo` first") from None
    key = instance / "demo-business-key.json"
    if not key.exists():
        raise SystemExit(f"serve_demos: no {key}: run `hawiya demo` first")
    result: dict[str, dict[str, Any]] = {}
    for folder, port, client_id, _name in DEMOS:
        other = next(d for d in DEMOS if d[0] != folder)
        result[folder] = {
            "HAWIYA_ISSUER": issuer,
            "HAWIYA_CLIENT_ID": client_id,
            "HAWIYA_REDIRECT_URI": f"http://{HOST}:{port}/auth/callback",
            "HAWIYA_POST_LOGOUT_REDIRECT_URI": f"http://{HOST}:{port}/",
            "HAWIYA_STORE": str(instance / "demo-sessions" / folder),
            "DEMO_OTHER_URL": f"http://{HOST}:{other[1]}/",
            "DEMO_OTHER_NAME": other[3],
        }
    result["permits"]["HAWIYA_CLIENT_SECRET"] = saved.get("clients", {}).get("demo-permits")
    result["business"]["HAWIYA_PRIVATE_JWK_FILE"] = str(key)
    return result


def serve(instance: Path, issuer: str) -> list[BaseWSGIServer]:
    """Start both demos, each in a daemon thread; return their servers."""
    settings = configs(instance, issuer)
    servers = []
    for folder, port, _client_id, name in DEMOS:
        app = load(folder).create_app(settings[folder])
        try:
            server = make_server(HOST, port, app, threaded=True, request_handler=PathOnlyLog)
        except OSError as error:
            raise SystemExit(f"serve_demos: cannot listen on {HOST}:{port} ({error.strerror})") from None
        threading.Thread(target=server.serve_forever, name=f"demo-{folder}", daemon=True).start()
        servers.append(server)
        print(f"demo agency {name}: http://{HOST}:{port}/", flush=True)
    return servers


def main(argv: list[str] | None = None) -> int:
    """Serve the demos; run the command after ``--`` (if any) until it ends or Ctrl-C."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[args.index("--") + 1 :] if "--" in args else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--instance", type=Path, default=Path(os.environ.get("HAWIYA_INSTANCE_PATH", "instance"))
    )
    parser.add_argument("--issuer", default=os.environ.get("HAWIYA_ISSUER", "http://localhost:8000"))
    options = parser.parse_args(args[: args.index("--")] if "--" in args else args)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    serve(options.instance.resolve(), options.issuer.rstrip("/"))

    stop = threading.Event()
    children: list[subprocess.Popen[bytes]] = []

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        # Ctrl-C reaches the child too (one process group); a signal sent to this process alone
        # must stop it all the same. Either way gunicorn gets a graceful SIGTERM.
        for child in children:
            if child.poll() is None:
                child.terminate()
        stop.set()

    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    if not command:
        stop.wait()
        return 0
    child = subprocess.Popen(command)  # noqa: S603 - the operator's own command
    children.append(child)
    if stop.is_set():  # interrupted while it was starting
        child.terminate()
    while child.poll() is None and not stop.is_set():
        stop.wait(0.5)
    try:
        return child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()


if __name__ == "__main__":
    sys.exit(main())
