"""What PostgreSQL plans to do for a query, read from EXPLAIN (ANALYZE, FORMAT JSON),
for tests that pin the planner's choice on a large book (testing/book.py) rather
than a timing."""

import json
from dataclasses import dataclass, field

from django.db.models import QuerySet

SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


@dataclass
class Plan:
    text: str
    indexes: set[str] = field(default_factory=set)
    sequential_scans: set[str] = field(default_factory=set)
    sorts: int = 0
    rows_removed: int = 0
    rows_read: int = 0


def plan_of(queryset: QuerySet) -> Plan:
    """The plan PostgreSQL ran for ``queryset``: the indexes it scanned, the tables
    it read whole, its sorts, the rows its scans read (summed over their loops) and
    those it read only to throw away (by a filter or a join filter)."""
    text = queryset.explain(format="json", analyze=True)
    plan = Plan(text)
    _walk(json.loads(text)[0]["Plan"], plan)
    return plan


def _walk(node: dict, plan: Plan) -> None:
    if "Index Name" in node:
        plan.indexes.add(node["Index Name"])
    if node["Node Type"] == "Seq Scan":
        plan.sequential_scans.add(node["Relation Name"])
    if node["Node Type"] in {"Sort", "Incremental Sort"}:
        plan.sorts += 1
    loops = node.get("Actual Loops", 1)
    removed = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Join Filter", 0)
    plan.rows_removed += loops * removed
    if node["Node Type"] in SCANS and "Relation Name" in node:
        plan.rows_read += loops * (node["Actual Rows"] + removed)
    for child in node.get("Plans", []):
        _walk(child, plan)
