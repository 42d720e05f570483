"""Routing: order a route's eligible targets for one request.

A strategy never removes targets (the policy stage decides eligibility); it only orders
them, and the executor walks that order, failing over from one to the next.
"""

from emancipate.routing.strategies import Independence, Strategy, build_strategy, router_status

__all__ = ["Independence", "Strategy", "build_strategy", "router_status"]
