"""Routing: order a route's eligible targets for one request.

A strategy never removes targets (the policy stage decides eligibility); it only orders
them, and the executor walks that order, failing over from one to the next.
"""

from emancipate.routing.strategies import Strategy, build_strategy

__all__ = ["Strategy", "build_strategy"]
