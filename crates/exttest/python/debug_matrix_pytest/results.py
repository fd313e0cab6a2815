"""The events file: one JSON object per line, written so that a crash loses nothing.

Every line is written with a single ``os.write`` on an ``O_APPEND`` descriptor, so a crash
(segfault, abort, ``os._exit``) leaves every event written before it, and several processes
may share a file. The events themselves are specified in ``../events.schema.json``.
"""

import json
import os


class Results:
    """Append-only JSON-lines writer that survives the process crashing."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        if path:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, event, sync=False):
        if self.fd is None:
            return
        line = json.dumps(event, separators=(",", ":"), default=str) + "\n"
        data = line.encode("utf-8", "backslashreplace")
        # One write() on an O_APPEND descriptor: the line lands whole, even
        # with several writers, and is in the kernel before we return.
        while data:
            written = os.write(self.fd, data)
            data = data[written:]
        if sync:
            try:
                os.fsync(self.fd)
            except OSError:
                pass

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

