"""Interrupting a run in process: a progress object that raises after ``n`` recorded cycles."""


class Stop(Exception):
    """Raised by :class:`StopAfter` (stands in for a kill between two cycles)."""


class StopAfter:
    """``progress=StopAfter(n)`` stops ``bal.active.run.run`` right after its n-th record."""

    def __init__(self, n: int):
        self.n = n

    def start(self, total, done=0):
        pass

    def update(self, record):
        self.n -= 1
        if self.n == 0:
            raise Stop

    def close(self):
        pass
