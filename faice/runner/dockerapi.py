"""A small client for the Docker Engine API: the dozen calls a batch needs, over the engine's socket.

Importing the docker SDK (with requests and urllib3) costs about 0.2 s and http.client another
30 ms, against half a second for a whole ``docker run``; this module costs a few milliseconds. It
speaks HTTP/1.1 (one connection per call) over the unix socket
(``DOCKER_HOST=unix://...``, the default) or TCP (``tcp://``, with TLS when
``DOCKER_TLS_VERIFY`` is set, certificates from ``DOCKER_CERT_PATH``).
"""

from __future__ import annotations

import base64
import errno
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote, urlencode, urlsplit

from faice.errors import EnvironmentUnusable

DEFAULT_HOST = "unix:///var/run/docker.sock"


class DockerError(EnvironmentUnusable):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotFound(DockerError):
    pass


class _Response:
    """An HTTP/1.1 response read from a socket: status, headers, and the body (chunked or not)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = sock.makefile("rb")
        status_line = self.stream.readline().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise OSError(f"not an HTTP answer from the Docker engine: {status_line.strip()!r}")
        self.status = int(parts[1])
        self.reason = parts[2].strip() if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while True:
            line = self.stream.readline().decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunks = self._body()
        self._buffer = b""

    def _body(self) -> Iterator[bytes]:
        """The body; a connection that closes before the body is complete is an error, not an end."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line = self.stream.readline()
                if not line:
                    raise OSError("the Docker engine closed the connection mid-answer")
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise OSError(f"garbled answer from the Docker engine: {line[:40]!r}") from None
                if size == 0:
                    return
                block = self.stream.read(size)
                if len(block) < size:
                    raise OSError("the Docker engine closed the connection mid-answer")
                yield block
                self.stream.readline()
        elif "content-length" in self.headers:
            remaining = int(self.headers["content-length"])
            while remaining > 0:
                block = self.stream.read(min(remaining, 1 << 16))
                if not block:
                    raise OSError("the Docker engine closed the connection mid-answer")
                remaining -= len(block)
                yield block
        else:
            while block := self.stream.read1(1 << 16):
                yield block

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes (fewer only at the end), or everything with -1."""
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def lines(self) -> Iterator[bytes]:
        pending = b""
        for chunk in self._chunks:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            yield from complete
        if pending:
            yield pending

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


class DockerAPI:
    def __init__(self, host: str | None = None, timeout: float = 120) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self.timeout = timeout
        parts = urlsplit(self.host)
        if parts.scheme not in ("unix", "tcp", "http", "https"):
            raise DockerError(0, f"DOCKER_HOST={self.host}: only unix:// and tcp:// engines are supported")
        self._parts = parts

    def _connect(self, timeout: float | None) -> socket.socket:
        parts = self._parts
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(parts.path)
            return sock
        tls = bool(os.environ.get("DOCKER_TLS_VERIFY")) or parts.scheme == "https"
        sock = socket.create_connection((parts.hostname or "localhost", parts.port or (2376 if tls else 2375)), timeout=timeout)
        if tls:
            import ssl


            certs = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
            context = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
            context.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
            sock = context.wrap_socket(sock, server_hostname=parts.hostname)
        return sock

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                 headers: dict[str, str] | None = None, timeout: float | None | str = "default", upgrade: bool = False) -> _Response:
        """One request on its own connection; ``upgrade`` asks the engine to hand the connection
        over to a raw stream after its answer (attach), instead of closing it."""
        sock = self._connect(self.timeout if timeout == "default" else timeout)  # type: ignore[arg-type]
        query = f"?{urlencode(params)}" if params else ""
        payload = json.dumps(body).encode() if body is not None else b""
        connection = ["Connection: Upgrade", "Upgrade: tcp"] if upgrade else ["Connection: close"]
        head = [f"{method} {path}{query} HTTP/1.1", "Host: docker", *connection, f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
            response = _Response(sock)
        except BaseException:
            sock.close()
            raise
        if response.status >= 400:
            text = response.read().decode(errors="replace")
            response.close()
            try:
                decoded = json.loads(text)
                message = decoded.get("message", text) if isinstance(decoded, dict) else text
            except ValueError:
                message = text
            raise (NotFound if response.status == 404 else DockerError)(response.status, message.strip() or response.reason)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the decoded JSON answer (text for other answers, None for an empty one)."""
        response = self._request(method, path, **kwargs)
        try:
            data = response.read()
        finally:
            response.close()
        if not data.strip():
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                return json.loads(data)
            except ValueError:
                raise DockerError(response.status, f"garbled JSON from the Docker engine for {method} {path}") from None
        return data.decode(errors="replace")

    # --- the calls faice makes ---------------------------------------------------------------

    def ping(self) -> None:
        self.call("GET", "/_ping")

    def inspect_image(self, image: str) -> Any:
        return self.call("GET", f"/images/{quote(image, safe='')}/json")

    def pull(self, repository: str, tag: str | None, auth: dict[str, str] | None = None) -> None:
        headers = {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()} if auth else None
        params = {"fromImage": repository, **({"tag": tag} if tag else {})}
        response = self._request("POST", "/images/create", params=params, headers=headers, timeout=None)
        try:
            for line in response.lines():
                if line.strip():
                    event = json.loads(line)
                    if "error" in event:
                        raise DockerError(500, event["error"])
        finally:
            response.close()

    def create_container(self, config: dict[str, Any], name: str | None = None) -> str:
        return self.call("POST", "/containers/create", params={"name": name} if name else None, body=config)["Id"]

    def start(self, container: str) -> None:
        self.call("POST", f"/containers/{container}/start")

    def wait(self, container: str, timeout: float | None) -> int:
        """Block until the container ends; raises TimeoutError after ``timeout`` seconds."""
        try:
            result = self.call("POST", f"/containers/{container}/wait", timeout=timeout)
        except TimeoutError:
            raise TimeoutError(container) from None
        if not isinstance(result, dict):
            raise DockerError(0, f"unexpected answer to waiting for the container: {str(result)[:80]}")
        return int(result.get("StatusCode", -1))

    def inspect_container(self, container: str) -> Any:
        return self.call("GET", f"/containers/{container}/json")

    def logs(self, container: str, stdout: IO[bytes] | None, stderr: IO[bytes] | None) -> None:
        """Copy the ended container's output streams into ``stdout``/``stderr`` (demultiplexed, one call)."""
        params = {"stdout": int(stdout is not None), "stderr": int(stderr is not None)}
        response = self._request("GET", f"/containers/{container}/logs", params=params, timeout=self.timeout)
        try:
            for kind, chunk in _frames(response):
                target = stderr if kind == 2 else stdout
                if target is not None:
                    target.write(chunk)
        finally:
            response.close()

    def attach(self, container: str, stdin: bool) -> _Response:
        """Attach to a container's streams, as ``docker run`` does before it starts the container (so
        that nothing is missed, however soon the tool ends): the answer, whose body is the
        container's output multiplexed as ``_frames`` reads it, until the engine ends the stream
        after the container ended. With ``stdin``, what is sent on its socket is the container's
        standard input, and shutting the socket's write side is the end of that input (for a
        container created with ``OpenStdin`` and ``StdinOnce``); the output still comes.

        The copy is exact, byte for byte, unlike the logs call (Docker's json-file log replaces
        bytes that are not UTF-8) and whatever the log driver (``none`` too). stdout and stderr
        are always attached: Podman attaches them anyway, and its conmon then holds up the tool's
        writes until they are read, so the output must be read whatever is made of it. The socket
        blocks (the tool may take its time: only the engine's end ends the stream); the caller
        closes the answer. ``detachKeys`` is empty: no byte sequence in the input may end the copy
        (Docker and Podman 4.3 look for one only with a TTY; this does not rely on it)."""
        params = {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1, "detachKeys": ""}
        response = self._request("POST", f"/containers/{container}/attach", params=params, upgrade=True)
        response.sock.settimeout(None)
        return response

    def kill(self, container: str) -> None:
        self.call("POST", f"/containers/{container}/kill")

    def remove(self, container: str) -> None:
        self.call("DELETE", f"/containers/{container}", params={"force": 1, "v": 1})

    def containers(self, labels: dict[str, str]) -> list[str]:
        return [c["Id"] for c in self.labelled(labels)]

    def labelled(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The containers (running or not) with these labels; a label given as "" only needs to be there."""
        filters = json.dumps({"label": [f"{k}={v}" if v else k for k, v in labels.items()]})
        return list(self.call("GET", "/containers/json", params={"all": 1, "filters": filters}))


class Attachment:
    """A running container's attached streams (an answer from ``attach``), copied by threads of
    their own: its output, demultiplexed, into the ``stdout`` and ``stderr`` files as it arrives,
    and its standard input file (``source``), when it has one, into it, then the end of the input.

    A tool that ends without reading all of its input closes the stream under the copy (EPIPE,
    ECONNRESET): that is no error, the container's exit code tells how the tool did. ``finish``,
    once the container has ended (or was killed), waits for the rest of its output up to the end
    of the stream, closes everything and raises what the output copy met (an engine lost, a full
    disk: OSError); ``close`` alone (an interrupted run) cuts both copies short. Either way no
    thread outlives the call by more than its bounded waits, and the files are left to the caller.
    """

    #: how long ``finish`` waits for the end of the stream once the container ended: what is left
    #: then is what the engine still buffers (Docker blocks a tool's writes past 1 MiB unread, conmon
    #: at once), copied in well under a second
    FINISH_SECONDS = 30.0
    #: how long ``close`` waits for a thread once the socket is shut (it can only be reading the
    #: input file or writing an output file then)
    JOIN_SECONDS = 5.0
    BLOCK = 1 << 16

    def __init__(self, response: _Response, stdout: IO[bytes], stderr: IO[bytes], source: IO[bytes] | None = None) -> None:
        """Start copying; the attachment owns ``response`` and ``source`` (an open binary file) from here on."""
        self.response = response
        self.sock = response.sock
        self.stdout, self.stderr = stdout, stderr
        self.source = source
        self.error: OSError | None = None
        self._closing = False
        self.reader = threading.Thread(target=self._read, name="faice-attach-output", daemon=True)
        self.feeder = threading.Thread(target=self._feed, name="faice-attach-stdin", daemon=True) if source is not None else None
        self.reader.start()
        if self.feeder is not None:
            self.feeder.start()

    def _read(self) -> None:
        try:
            for kind, chunk in _frames(self.response):
                if self.error is None:
                    try:
                        target = self.stderr if kind == 2 else self.stdout
                        target.write(chunk)
                        target.flush()  # in the file as soon as it came: one write a frame
                    except OSError as exc:  # a full disk: the rest is read and dropped, so that the tool is not held up
                        self.error = exc
        except (OSError, ValueError) as exc:  # ValueError: close() closed the stream under the read
            # Podman resets the stream when it ends with input of ours unread (a tool that did not read
            # it all): an end like EOF, since on a unix socket all it sent before still arrives first.
            unread_input = isinstance(exc, ConnectionResetError) and self.source is not None
            if isinstance(exc, OSError) and not unread_input and not self._closing and self.error is None:
                self.error = exc

    def _feed(self) -> None:
        assert self.source is not None
        try:
            while block := self.source.read(self.BLOCK):
                self.sock.sendall(block)
            self.sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            pass  # the tool ended without reading it all, or the end of the container cut the copy short
        finally:
            self.source.close()  # here, not in close(): a file still being read cannot be closed from another thread

    def finish(self) -> None:
        """Once the container has ended: the rest of its output, then everything closed. OSError
        when the copy failed, or the stream did not end within ``FINISH_SECONDS``."""
        if self.feeder is not None and self.feeder.is_alive():
            try:
                self.sock.shutdown(socket.SHUT_WR)  # the input nobody reads any more: a send blocked on it ends
            except OSError:
                pass
        self.reader.join(self.FINISH_SECONDS)
        ended = not self.reader.is_alive()
        self.close()
        if self.error is not None:
            raise self.error
        if not ended:
            raise OSError(errno.ETIMEDOUT, f"the container's output did not end within {self.FINISH_SECONDS:g} s of the container")

    def close(self) -> None:
        """Cut both copies short (a no-op after their end), wait for the threads and close the connection."""
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a send blocked on a tool that does not read, and a read
        except OSError:
            pass  # the engine closed it already
        for thread in (self.reader, self.feeder):
            if thread is not None:
                thread.join(self.JOIN_SECONDS)
        self.response.close()


def _frames(response: _Response) -> Iterator[tuple[int, bytes]]:
    """The multiplexed log stream of a container without a TTY: 8-byte header, then the payload."""
    while True:
        header = response.read(8)
        if len(header) < 8:
            return
        kind, size = header[0], struct.unpack(">I", header[4:])[0]
        yield kind, response.read(size)
