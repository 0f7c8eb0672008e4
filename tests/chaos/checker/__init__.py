"""Checkers for the chaos suite (issue #4).

  history          the Op record the harness writes, JSON lines dump/load, printing
  linearizability  register workload (read / write / cas per key): Porcupine-style
                   search, per key, time-limited, minimal failing sub-history
  setcheck         set workload: acknowledged adds survive, nothing is invented
  bankcheck        bank workload (SQL): the total never changes, no negative balance,
                   every node the same, the transfer ledger against the history
  lockcheck        lock workload: one holder at a time in the backend's view, tokens
                   never go back, FIFO, expiry and lock-delay not early, the fenced
                   register accepts writes in token order
"""
from . import bankcheck, history, linearizability, lockcheck, setcheck
from .history import Op, dump, format_history, load

__all__ = ["bankcheck", "history", "linearizability", "lockcheck", "setcheck", "Op", "dump", "format_history", "load"]
