"""The independence report: how much of the organisation's AI traffic depends on whom.

``build_report`` aggregates the ledger in SQL and returns plain JSON-able data;
``render_table`` and ``render_html`` turn it into text for a terminal or a self-contained page
with charts (the Chart.js copy the dashboard serves, inlined, so the file works offline).
"""

from __future__ import annotations

from emancipate.report.build import HHI_BANDS, build_report, hhi, hhi_band
from emancipate.report.render import render_html, render_table

__all__ = ["HHI_BANDS", "build_report", "hhi", "hhi_band", "render_html", "render_table"]
