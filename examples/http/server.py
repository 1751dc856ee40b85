#!/usr/bin/env python3
"""A small HTTP server on 127.0.0.1 for the http example: GET serves ROOT, PUT/POST store uploads.

    python examples/http/server.py --root examples/http/www --uploads outputs/http-uploads --port-file PORTFILE
"""

from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path


class Handler(http.server.SimpleHTTPRequestHandler):
    uploads: Path

    def _upload(self) -> None:
        target = (self.uploads / self.path.lstrip("/")).resolve()
        if not str(target).startswith(str(self.uploads.resolve())):
            self.send_error(403)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = _upload
    do_POST = _upload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--uploads", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    Handler.uploads = Path(args.uploads)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), functools.partial(Handler, directory=args.root))
    Path(args.port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
