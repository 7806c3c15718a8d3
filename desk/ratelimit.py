"""Login rate limiting (pure: the clock is passed in).

Failed logins are counted per username and per client address over a sliding window; past
the limit, further attempts are refused without checking the password until the oldest
failure leaves the window. Per username stops guessing one agent's password from many
addresses; per address stops one client trying many names. A success clears the name's
count (not the address's: a guesser who knows one password must not reset the others).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class LoginLimiter:
    max_failures: int = 5
    window: float = 300.0  # seconds
    max_keys: int = 100_000  # tracked names and addresses; the oldest are forgotten beyond it
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, username: str, address: str, now: float) -> float:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        wait = 0.0
        for key in (f"u:{username.lower()}", f"a:{address}"):
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, username: str, address: str, now: float) -> None:
        for key in (f"u:{username.lower()}", f"a:{address}"):
            if key not in self._failures and len(self._failures) >= self.max_keys:
                del self._failures[next(iter(self._failures))]
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username.lower()}", None)
