"""The send-out desk: send-out orders from collection to final results, shipments, and HL7 orders.

models in lab.models.sendouts and lab.models.intake; the HL7 text itself in lab.hl7.
"""
