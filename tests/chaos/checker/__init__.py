"""Checkers for the chaos suite (issue #4).

  history          the Op record the harness writes, JSON lines dump/load, printing
  linearizability  register workload (read / write / cas per key): Porcupine-style
                   search, per key, time-limited, minimal failing sub-history
  setcheck         set workload: acknowledged adds survive, nothing is invented
"""
from . import history, linearizability, setcheck
from .history import Op, dump, format_history, load

__all__ = ["history", "linearizability", "setcheck", "Op", "dump", "format_history", "load"]
