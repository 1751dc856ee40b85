"""Build a requests-cache SQLite file that serves the JSON-LD contexts an RO-Crate needs,
so that `rocrate-validator validate --offline --cache-path CACHE` never touches the network."""
import io
import sys
from pathlib import Path

from requests.adapters import BaseAdapter
from requests_cache import CachedSession
from urllib3 import HTTPResponse

CONTEXTS = {
    "https://w3id.org/ro/crate/1.1/context": "ro-crate-1.1-context.jsonld",
    "https://w3id.org/ro/terms/workflow-run/context": "workflow-run-context.jsonld",
}


class LocalFiles(BaseAdapter):
    """Answers GETs for the URLs above from local files; no socket is opened."""

    def __init__(self, ctx_dir: Path):
        super().__init__()
        self.ctx_dir = ctx_dir

    def send(self, request, **kwargs):
        body = (self.ctx_dir / CONTEXTS[request.url]).read_bytes()
        raw = HTTPResponse(body=io.BytesIO(body), status=200, preload_content=False,
                           headers={"Content-Type": "application/ld+json"},
                           request_url=request.url, request_method="GET")
        return self.build_response(request, raw)

    def build_response(self, request, raw):
        from requests.adapters import HTTPAdapter
        return HTTPAdapter().build_response(request, raw)

    def close(self):
        pass


def build_cache(cache_path: str, ctx_dir: Path) -> None:
    session = CachedSession(cache_name=cache_path, backend="sqlite", expire_after=-1)
    session.mount("https://w3id.org/", LocalFiles(ctx_dir))
    for url in CONTEXTS:
        r = session.get(url)
        r.raise_for_status()
        r.json()
    session.close()


if __name__ == "__main__":
    build_cache(sys.argv[1], Path(sys.argv[2]))
