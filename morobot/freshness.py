"""How old an input is, by the receiving node's clock: one rule for every node.

An input's age is the time since it arrived on the receiver's clock plus how old its stamp already
was on arrival. Neither part can be made smaller by the sender: a stamp from the future adds
nothing (and is rejected outright past a small lead, :func:`stamp_lead_error`), and data that stops
arriving ages with the receiver's clock whatever it was stamped.
"""

from __future__ import annotations

from typing import Optional


def input_age(now: float, arrival: float, stamp: float) -> float:
    """Age (s) at ``now`` of an input stamped ``stamp`` that arrived at ``arrival`` (receiver's clock)."""
    return (now - arrival) + max(0.0, arrival - stamp)


def stamp_lead_error(what: str, stamp: float, arrival: float, max_lead: float) -> Optional[str]:
    """Why an input stamped ``stamp`` that arrived at ``arrival`` is rejected as from the future, or None."""
    lead = stamp - arrival
    if lead > max_lead:
        return f"{what} stamped {lead:.3f} s ahead of the clock on arrival (max_stamp_lead {max_lead} s): rejected"
    return None
