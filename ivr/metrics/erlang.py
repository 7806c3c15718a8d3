"""Erlang C and Erlang A: how a queue performs with N agents, and how many agents a target needs.

Notation (times in seconds):
  A     offered load in Erlangs = calls offered per second x AHT
  N     agents taking calls (shrinkage not included)
  T     the service-level threshold: "answered within T seconds"
  B(N)  Erlang B, the blocking probability of N agents without a queue

Erlang C (M/M/N, callers never give up; needs N > A):
  C         = N B / (N - A (1 - B))                   probability of waiting
  SL        = 1 - C exp(-(N - A) T / AHT)             P(answered within T)
  ASA       = C AHT / (N - A)                         mean wait (every caller is answered)
  occupancy = A / N

Erlang A (M/M/N+M: callers give up after an exponential patience of mean P), after
Mandelbaum & Zeltyn, "The Palm/Erlang-A queue, with applications to call centers" (Technion
2005, section 4) and Zeltyn's thesis "Call centers with impatient customers: exact analysis
and many-server asymptotics of the M/M/n+G queue" (Technion 2004, eqs. 5.5-5.23), which
follow Garnett, Mandelbaum & Reiman, "Designing a call center with impatient customers",
MSOM 4(3), 2002. With rates lambda = A / AHT, mu = 1 / AHT, theta = 1 / P, rho = A / N,
c = N mu / theta and b = lambda / theta, let

  Q(c, b)   = sum_{k>=0} b^k / ((c+1)(c+2)...(c+k)) = c e^b b^-c gamma(c, b)
            (the stationary P(k callers waiting) / P(none waiting, all agents busy); gamma is
            the lower incomplete gamma function), and
  pi_N      = B / (1 + (Q(c, b) - 1) B)               P(all N busy, nobody waiting)
  P(W > 0)  = Q(c, b) pi_N                            probability of waiting
  P(Ab)     = P(W > 0) (1 - (1 - 1/Q(c, b)) / rho)    share of callers who abandon
  P(W > T, answered) = pi_N exp(b - b_T - N T / AHT) (Q(c, b_T) - 1) / rho,  b_T = b e^(-theta T)
  SL        = 1 - P(Ab) - P(W > T, answered)          P(answered within T)
  ASA       = E[W; answered] / (1 - P(Ab))            mean wait of answered callers, where
  E[W; answered] = pi_N P / rho * sum_{j>=1} q_j H_j,  q_j = b^j / ((c+1)...(c+j)),
                   H_j = sum_{m=1..j} 1 / (c + m)
            (a caller who finds k waiting is answered with probability c / (c + k + 1), and
            E[V e^(-theta V)] of its offered wait V, a sum of exponentials of rates
            N mu + m theta, gives the series; derived here, checked against the chain in tests)
  occupancy = A (1 - P(Ab)) / N

Both service levels count every offered call in the denominator: an abandoned call is a call
not answered within T. As P grows Erlang A tends to Erlang C; as P shrinks, P(Ab) tends to
Erlang B.

Numerical stability: B comes from the recursion B(n) = A B(n-1) / (n + A B(n-1)), a ratio of
positive numbers below 1 at every step, so hundreds of Erlangs neither overflow nor lose
precision (the textbook A^N / N! form overflows past N = 170). Q(c, b) is taken in log space
from scipy's regularized incomplete gamma function, which stays accurate for arguments in the
tens of thousands; where that underflows (c far above b) the series is summed directly, and it
converges fast there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

Model = Literal["erlang_c", "erlang_a"]

# Below this, scipy's regularized gamma(c, b) loses relative precision to underflow.
_GAMMAINC_FLOOR = 1e-250
# A series stops once its terms fall this far (natural log) below its largest term.
_SERIES_DEPTH = 50.0
# No queue needs more agents than this: a search that gets here has a bug or absurd input.
_MAX_AGENTS = 1_000_000
# Divisions like 7 / (1 - 0.3) land a hair above the integer they mean.
_ROUNDING_SLACK = 1e-9


def erlang_b(load: float, agents: int) -> float:
    """Blocking probability of `agents` servers without a queue, offered `load` Erlangs."""
    if load < 0 or agents < 0:
        raise ValueError("load and agents must not be negative")
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def erlang_c(load: float, agents: int) -> float:
    """Probability that a caller waits (M/M/N); 1.0 when agents <= load (the queue never empties)."""
    return _erlang_c(load, agents, erlang_b(load, agents))


def _erlang_c(load: float, agents: int, blocking: float) -> float:
    """Erlang C from the Erlang B value of the same load and agents."""
    if agents <= load:
        return 1.0
    return agents * blocking / (agents - load * (1.0 - blocking))


def estimate_patience(abandon_waits: Iterable[float], served_waits: Iterable[float]) -> float | None:
    """Mean caller patience in seconds, estimated from what callers did in the queue.

    Maximum likelihood for exponential patience with censoring: an abandoned caller's wait is
    an observed patience, an answered caller's wait a lower bound on its patience. The estimate
    is the total time all callers waited divided by the number who abandoned.

    None when nobody abandoned, or nobody waited at all: the data then cannot tell patience
    from infinite, and staffing falls back to Erlang C or a configured default. Limits: it
    assumes memoryless patience (a caller's will to wait does not change with the wait, nor
    with announcements), and it is noisy with few abandons, so pool several intervals of a
    queue rather than estimate each 15 minutes alone; callers who hang up at once (balking)
    make callers look less patient, which is why short abandons are best left out of both
    lists.
    """
    abandons = 0
    total = 0.0
    for wait in abandon_waits:
        if wait < 0:
            raise ValueError(f"negative wait: {wait}")
        abandons += 1
        total += wait
    for wait in served_waits:
        if wait < 0:
            raise ValueError(f"negative wait: {wait}")
        total += wait
    if abandons == 0 or total <= 0:
        return None
    return total / abandons


@dataclass(frozen=True)
class Prediction:
    """How a queue performs with a given number of agents."""

    agents: int
    wait_probability: float  # P(a caller waits at all)
    service_level: float  # P(answered within T): answered within T / offered
    asa_seconds: float  # mean wait of answered callers; inf when Erlang C has N <= A
    abandon_rate: float  # abandoned / offered (0 in Erlang C)
    occupancy: float  # share of the agents' time spent on calls


@dataclass(frozen=True)
class _Delay:
    """Erlang A quantities for one N that the service level and ASA share."""

    wait_probability: float
    log_pi: float  # log P(all N busy, nobody waiting)
    abandon_rate: float


def _log_q_chunks(c: float, b: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(j, log q_j) for j = 1, 2, ... in chunks, q_j = b^j / ((c+1)...(c+j)), until the terms
    no longer matter: past the largest term they only shrink, so the series stops once they
    are _SERIES_DEPTH below it."""
    log_b = math.log(b)
    start, size, carried, peak = 1, 256, 0.0, -math.inf
    while True:
        j = np.arange(start, start + size, dtype=np.float64)
        log_q = carried + np.cumsum(log_b - np.log(c + j))
        yield j, log_q
        peak = max(peak, float(log_q.max()))
        carried = float(log_q[-1])
        shrinking = b < c + j[-1]
        if shrinking and carried < peak - _SERIES_DEPTH:
            return
        start += size
        size = min(size * 2, 1 << 16)


def _log_sum_exp(parts: Iterable[np.ndarray]) -> float:
    """log(sum(exp(x))) over several arrays without overflow; -inf for an empty sum."""
    peak, scaled = -math.inf, 0.0
    for part in parts:
        top = float(part.max())
        if top > peak:
            scaled = scaled * math.exp(peak - top) if peak > -math.inf else 0.0
            peak = top
        scaled += float(np.exp(part - peak).sum())
    return peak + math.log(scaled) if scaled > 0 else -math.inf


def _log_q_sum(c: float, b: float) -> tuple[float, float]:
    """(log Q(c, b), log(Q(c, b) - 1)) for Q(c, b) = sum_{k>=0} q_k, q_0 = 1, in log space so
    that neither a huge Q (an overloaded queue) nor a Q barely above 1 loses precision."""
    if b <= 0:
        return 0.0, -math.inf
    # Imported here: scipy takes ~0.3 s to import, which every `ivr` command would pay.
    from scipy.special import gammainc  # type: ignore[import-untyped]

    regularized = float(gammainc(c, b))
    if regularized > _GAMMAINC_FLOOR:
        log_q = math.log(c) + b - c * math.log(b) + math.lgamma(c) + math.log(regularized)
        if log_q <= 0:  # rounding: Q >= 1 always
            return 0.0, -math.inf
        return log_q, log_q + math.log(-math.expm1(-log_q))
    log_rest = _log_sum_exp(log_q for _, log_q in _log_q_chunks(c, b))
    return _log1p_exp(log_rest), log_rest


def _log1p_exp(x: float) -> float:
    """log(1 + e^x) without overflow."""
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


class QueueModel:
    """One queue's offered load; predicts its service for any number of agents.

    `patience_seconds` None is Erlang C, a number Erlang A. Erlang B values are kept from one
    N to the next, so trying many N for one load costs little more than the largest one.
    """

    def __init__(self, load: float, aht_seconds: float, patience_seconds: float | None = None) -> None:
        if not load > 0 or not math.isfinite(load):
            raise ValueError(f"load must be a positive number of Erlangs, not {load}")
        if not aht_seconds > 0 or not math.isfinite(aht_seconds):
            raise ValueError(f"AHT must be positive seconds, not {aht_seconds}")
        if patience_seconds is not None and (not patience_seconds > 0 or not math.isfinite(patience_seconds)):
            raise ValueError(f"patience must be positive seconds, not {patience_seconds}")
        self.load = load
        self.aht_seconds = aht_seconds
        self.patience_seconds = patience_seconds
        self._blocking = [1.0]
        self._delays: dict[int, _Delay] = {}

    @property
    def model(self) -> Model:
        return "erlang_c" if self.patience_seconds is None else "erlang_a"

    def blocking(self, agents: int) -> float:
        """Erlang B for `agents`, extending the recursion as far as needed."""
        table = self._blocking
        while len(table) <= agents:
            n, previous = len(table), table[-1]
            table.append(self.load * previous / (n + self.load * previous))
        return table[agents]

    def _delay(self, agents: int) -> _Delay:
        found = self._delays.get(agents)
        if found is not None:
            return found
        assert self.patience_seconds is not None
        ratio = self.patience_seconds / self.aht_seconds
        log_q, _ = _log_q_sum(agents * ratio, self.load * ratio)
        blocking = self.blocking(agents)
        if blocking == 0.0:  # underflow: so many agents that nobody ever waits
            delay = _Delay(0.0, -math.inf, 0.0)
            self._delays[agents] = delay
            return delay
        # P(W > 0) = Q B / (1 + (Q - 1) B) = B / (B + (1 - B) / Q), finite however large Q is.
        inverse_q = math.exp(-log_q)
        waiting = blocking / (blocking + (1.0 - blocking) * inverse_q)
        rho = self.load / agents
        abandon = max(0.0, waiting * (1.0 - (1.0 - inverse_q) / rho))
        delay = _Delay(waiting, math.log(waiting) - log_q, abandon)
        self._delays[agents] = delay
        return delay

    def _check(self, agents: int) -> None:
        if agents < 1:
            raise ValueError(f"need at least one agent, not {agents}")

    def wait_probability(self, agents: int) -> float:
        self._check(agents)
        if self.patience_seconds is None:
            return _erlang_c(self.load, agents, self.blocking(agents))
        return self._delay(agents).wait_probability

    def abandon_rate(self, agents: int) -> float:
        self._check(agents)
        return 0.0 if self.patience_seconds is None else self._delay(agents).abandon_rate

    def service_level(self, agents: int, seconds: float) -> float:
        """P(answered within `seconds`), over all offered calls."""
        self._check(agents)
        if seconds < 0:
            raise ValueError(f"the service-level threshold must not be negative: {seconds}")
        if self.patience_seconds is None:
            if agents <= self.load:
                return 0.0
            waiting = _erlang_c(self.load, agents, self.blocking(agents))
            return 1.0 - waiting * math.exp(-(agents - self.load) * seconds / self.aht_seconds)
        delay = self._delay(agents)
        ratio = self.patience_seconds / self.aht_seconds
        b = self.load * ratio
        b_t = b * math.exp(-seconds / self.patience_seconds)
        _, log_q_t_minus_1 = _log_q_sum(agents * ratio, b_t)
        rho = self.load / agents
        late = math.exp(
            delay.log_pi + (b - b_t) - agents * seconds / self.aht_seconds + log_q_t_minus_1 - math.log(rho)
        )
        return min(1.0, max(0.0, 1.0 - delay.abandon_rate - late))

    def asa(self, agents: int) -> float:
        """Mean wait of answered callers, in seconds."""
        self._check(agents)
        if self.patience_seconds is None:
            if agents <= self.load:
                return math.inf
            waiting = _erlang_c(self.load, agents, self.blocking(agents))
            return waiting * self.aht_seconds / (agents - self.load)
        delay = self._delay(agents)
        answered = 1.0 - delay.abandon_rate
        if delay.wait_probability <= 0 or answered <= 0:
            return 0.0
        ratio = self.patience_seconds / self.aht_seconds
        c, b = agents * ratio, self.load * ratio
        harmonic_done = 0.0
        parts = []
        for j, log_q in _log_q_chunks(c, b):
            harmonic = harmonic_done + np.cumsum(1.0 / (c + j))
            harmonic_done = float(harmonic[-1])
            parts.append(log_q + np.log(harmonic))
        log_sum = _log_sum_exp(parts)
        rho = self.load / agents
        waited = math.exp(delay.log_pi + math.log(self.patience_seconds) - math.log(rho) + log_sum)
        return waited / answered

    def occupancy(self, agents: int) -> float:
        """Carried load per agent (capped at 1 for an overloaded Erlang C queue)."""
        self._check(agents)
        return min(1.0, self.load * (1.0 - self.abandon_rate(agents)) / agents)

    def predict(self, agents: int, sl_seconds: float) -> Prediction:
        return Prediction(
            agents=agents,
            wait_probability=self.wait_probability(agents),
            service_level=self.service_level(agents, sl_seconds),
            asa_seconds=self.asa(agents),
            abandon_rate=self.abandon_rate(agents),
            occupancy=self.occupancy(agents),
        )


@dataclass(frozen=True)
class StaffingTarget:
    """What a recommendation must meet. With `asa_seconds` set, the ASA target replaces the
    service-level target."""

    service_level: float = 0.8  # share answered within service_level_seconds
    service_level_seconds: float = 20.0
    asa_seconds: float | None = None
    max_occupancy: float = 0.85
    shrinkage: float = 0.3  # share of paid time agents are not taking calls

    def __post_init__(self) -> None:
        if not 0 < self.service_level < 1:
            raise ValueError(f"service-level target must be between 0 and 1, not {self.service_level}")
        if self.service_level_seconds < 0:
            raise ValueError(f"service-level seconds must not be negative, not {self.service_level_seconds}")
        if self.asa_seconds is not None and not self.asa_seconds > 0:
            raise ValueError(f"ASA target must be positive seconds, not {self.asa_seconds}")
        if not 0 < self.max_occupancy <= 1:
            raise ValueError(f"max occupancy must be in (0, 1], not {self.max_occupancy}")
        if not 0 <= self.shrinkage < 1:
            raise ValueError(f"shrinkage must be in [0, 1), not {self.shrinkage}")


@dataclass(frozen=True)
class Recommendation:
    model: Model
    load_erlangs: float
    agents: int  # taking calls
    scheduled: int  # agents / (1 - shrinkage), rounded up: the head count to plan
    service_level: float  # predicted with `agents`
    asa_seconds: float
    abandon_rate: float
    occupancy: float


def _smallest(meets: Callable[[int], bool], guess: int, floor: int) -> int:
    """The smallest n >= floor with meets(n), for meets False up to some n and True from there:
    gallop from the guess, then bisect, so a good guess costs a handful of evaluations."""
    low = high = max(guess, floor)  # invariant once set: meets(high), not meets(low) or low < floor
    if meets(high):
        step = 1
        low = high - step
        while low >= floor and meets(low):
            high, step = low, step * 2
            low = high - step
        low = max(low, floor - 1)
    else:
        step = 1
        high = low + step
        while not meets(high):
            if high >= _MAX_AGENTS:
                raise ValueError("no number of agents meets the target")
            low, step = high, step * 2
            high = min(low + step, _MAX_AGENTS)
    while high - low > 1:
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    return high


def _target_agents(queue: QueueModel, target: StaffingTarget) -> int:
    """The smallest N meeting the service-level (or ASA) target, before the occupancy cap."""
    seconds, asa_target = target.service_level_seconds, target.asa_seconds

    def meets(agents: int) -> bool:
        if asa_target is not None:
            return queue.asa(agents) <= asa_target
        return queue.service_level(agents, seconds) >= target.service_level

    if queue.model == "erlang_c":
        stable = math.floor(queue.load) + 1  # N > A
        return _smallest(meets, math.ceil(queue.load + math.sqrt(queue.load)), stable)
    # Erlang C's answer is usually within a few agents; the gallop copes when it is not.
    guess = _target_agents(QueueModel(queue.load, queue.aht_seconds), target)
    return _smallest(meets, guess, 1)


def recommend(
    load: float, aht_seconds: float, target: StaffingTarget, patience_seconds: float | None = None
) -> Recommendation:
    """Agents for one interval: the smallest N meeting the service-level (or ASA) target, raised
    to N >= A / max_occupancy, then scheduled = ceil(N / (1 - shrinkage)). Erlang A when
    `patience_seconds` is given, Erlang C otherwise. No load needs no agents."""
    if load < 0 or not math.isfinite(load):
        raise ValueError(f"load must be a non-negative number of Erlangs, not {load}")
    if load == 0:
        model: Model = "erlang_c" if patience_seconds is None else "erlang_a"
        return Recommendation(model, 0.0, 0, 0, 1.0, 0.0, 0.0, 0.0)
    queue = QueueModel(load, aht_seconds, patience_seconds)
    agents = max(_target_agents(queue, target), math.ceil(load / target.max_occupancy - _ROUNDING_SLACK))
    scheduled = math.ceil(agents / (1.0 - target.shrinkage) - _ROUNDING_SLACK)
    predicted = queue.predict(agents, target.service_level_seconds)
    return Recommendation(
        model=queue.model,
        load_erlangs=load,
        agents=agents,
        scheduled=scheduled,
        service_level=predicted.service_level,
        asa_seconds=predicted.asa_seconds,
        abandon_rate=predicted.abandon_rate,
        occupancy=predicted.occupancy,
    )
