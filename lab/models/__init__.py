"""Lab models, by floor of the work: the catalog, QC, orders, results, critical calls, send-outs and intake."""

from lab.models.catalog import Analyte, ReferenceRange, TestDefinition
from lab.models.criticals import CriticalCall, CriticalCallAttempt, CriticalCallEvent, EscalationStep
from lab.models.intake import InboundMessage, InboundMessageEvent
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
    "ControlLot",
    "CriticalCall",
    "CriticalCallAttempt",
    "CriticalCallEvent",
    "DialectProfile",
    "EscalationStep",
    "InboundMessage",
    "InboundMessageEvent",
    "Kit",
    "KitLot",
    "Orderable",
    "OutboundMessage",
    "QCRule",
    "QCRun",
    "RecollectionCall",
    "RecollectionCallEvent",
    "ReferenceLab",
    "ReferenceRange",
    "Result",
    "ResultEvent",
    "SendOut",
    "SendOutEvent",
    "Shipment",
    "ShipmentEvent",
    "TestDefinition",
    "TestOrder",
    "TestOrderEvent",
    "TestOrderQuerySet",
]
