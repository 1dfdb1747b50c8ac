"""Lab models, by floor of the work: the catalog, QC, orders, results and critical calls."""

from lab.models.catalog import Analyte, ReferenceRange, TestDefinition
from lab.models.criticals import CriticalCall, CriticalCallAttempt, CriticalCallEvent, EscalationStep
from lab.models.orders import RecollectionCall, RecollectionCallEvent, TestOrder, TestOrderEvent, TestOrderQuerySet
from lab.models.qc import ControlLot, Kit, KitLot, QCRule, QCRun
from lab.models.results import Result, ResultEvent

__all__ = [
    "Analyte",
    "ControlLot",
    "CriticalCall",
    "CriticalCallAttempt",
    "CriticalCallEvent",
    "EscalationStep",
    "Kit",
    "KitLot",
    "QCRule",
    "QCRun",
    "RecollectionCall",
    "RecollectionCallEvent",
    "ReferenceRange",
    "Result",
    "ResultEvent",
    "TestDefinition",
    "TestOrder",
    "TestOrderEvent",
    "TestOrderQuerySet",
]
