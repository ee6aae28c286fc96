"""The body of every task of the cycle benchmark's hand-written DAG: nothing but a small XCom.

A module of its own so that the hand-written DAG file imports nothing heavier than this.
"""

from __future__ import annotations


def noop(*args: object) -> dict[str, bool]:
    return {"ok": True}
