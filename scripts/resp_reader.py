"""Read whole RESP2/RESP3 replies as the bytes a server sent (shared by the
capture scripts)."""


def read_reply(f):
    """Read one whole RESP2/RESP3 reply from a binary file object (e.g.
    socket.makefile("rb")); return its bytes."""
    line = f.readline()
    if not line:
        raise EOFError("server closed")
    out = line
    t, rest = line[:1], line[1:-2]
    if t in b"+-:_#,(":
        return out
    if t in b"$!=":
        n = int(rest)
        return out if n < 0 else out + f.read(n + 2)
    if t in b"*~>%|":
        n = int(rest)
        if n < 0:
            return out
        for _ in range(n * (2 if t in b"%|" else 1)):
            out += read_reply(f)
        return out
    raise SystemExit(f"unexpected RESP type {line!r}")
