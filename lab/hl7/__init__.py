"""The HL7 v2 edge of the send-outs: reading what reference labs send, building what we send them,
the transports (MLLP, a dropped file) and the labs' dialect profiles.

It knows nothing of models, views or pages: it turns text into plain dataclasses and dataclasses
into text. lab.sendouts maps rows to and from them and files what they say.
"""
