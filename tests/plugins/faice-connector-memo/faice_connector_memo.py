"""A third-party connector: inputs are the text in the access data; outputs are appended to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faice.connectors import Connector, ConnectorError
from faice.connectors.base import Context, check_fields


class MemoConnector(Connector):
    name = "red-connector-memo"

    def validate(self, access: dict[str, Any], direction: str, kind: str, listing: list[Any] | None = None) -> list[str]:
        if kind != "File":
            return ["memo connectors only handle files"]
        return check_fields(access, {"text": str} if direction == "receive" else {"journal": str}, {})

    def default_basename(self, access: dict[str, Any]) -> str | None:
        return "memo.txt"

    def receive_file(self, access: dict[str, Any], destination: Path, context: Context) -> None:
        destination.write_text(access["text"])

    def send_file(self, access: dict[str, Any], source: Path, context: Context) -> None:
        journal = context.base_dir / access["journal"]
        if journal.parent.name == "forbidden":
            raise ConnectorError("the journal is read-only")
        with open(journal, "a") as handle:
            handle.write(source.read_text())
