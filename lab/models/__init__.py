"""Lab models, by floor of the work: the catalog, QC, orders, results, critical calls, send-outs and intake."""

from lab.models.catalog import Analyte, ReferenceRange, TestDefinition
from lab.models.criticals import CriticalCall, CriticalCallAttempt, CriticalCallEvent, EscalationStep
from lab.models.intake import InboundMessage
from lab.models.orders import RecollectionCall, RecollectionCallEvent, TestOrder, TestOrderEvent, TestOrderQuerySet
from lab.models.qc import ControlLot, Kit, KitLot, QCRule, QCRun
from lab.models.results import Result, ResultEvent
from lab.models.sendouts import (
    AskAtOrderEntry,
    DialectProfile,
    Orderable,
    OutboundMessage,
    ReferenceLab,
    SendOut,
    SendOutEvent,
    Shipment,
    ShipmentEvent,
)

__all__ = [
    "Analyte",
    "AskAtOrderEntry",
    "DialectProfile",
    "InboundMessage",
    "Orderable",
    "OutboundMessage",
    "ReferenceLab",
    "SendOut",
    "SendOutEvent",
    "Shipment",
    "ShipmentEvent",
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
