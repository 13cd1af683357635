"""A deliberately dumb AMI client over a plain socket, for protocol-level tests."""

from __future__ import annotations

import socket
import time

from cati.telephony.ami import parse_ami_message


class RawAmi:
    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.banner = self._read_line()
        self.closed = False
        self.chunks = 0

    def _read_line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode()

    def send(self, text: str, crlf=True):
        data = text if not crlf else text.replace("\n", "\r\n")
        self.sock.sendall(data.encode())

    def action(self, name, **headers):
        lines = [f"Action: {name}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.send("\n".join(lines) + "\n\n")

    def read(self, timeout=3.0):
        """Next message (dict) or None on EOF; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no AMI message")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no AMI message") from None
            if not chunk:
                self.closed = True
                return None
            self.chunks += 1
            self.buf += chunk
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        msg = parse_ami_message(raw.decode())
        msg["_raw"] = raw
        return msg

    def read_until(self, pred, timeout=5.0):
        got = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.read(max(0.01, deadline - time.monotonic()))
            if m is None:
                return got
            got.append(m)
            if pred(m):
                return got

    def login(self, user="cati", secret="good", **extra):
        self.action("Login", Username=user, Secret=secret, ActionID="login-1", **extra)
        return self.read()

    def close(self):
        self.sock.close()
