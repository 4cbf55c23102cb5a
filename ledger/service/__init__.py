"""Room ``service``: 志愿服务记录, a volunteer's verified service time, kept apart from beans.

Owns the tables ``service_records`` and ``service_certificates`` (``models``): one record per verified piece
of service (a patrol attendance, a verified radar answer), written once per ``source_ref`` by the room that
verified the work (``record_in``), the volunteer's list, and the signed 志愿服务记录证明 (``certificates``:
Ed25519, key purpose ``certificate``) anyone can verify offline. Records carry hours, activity, organiser,
day and verifier, never beans: they are never bought or sold.
May call: ``ledger.access``, ``ledger.infra``, ``ledger.errors``. Called by the capability rooms above it
(``ledger.patrols``, ``ledger.radar``); it knows neither.
"""

# the room's public use cases, so that a door writes ``from ledger import service``
from ledger.service.certificates import (
    CERT_TYP,
    Certificate,
    certificate_pdf,
    issue_certificate,
    verify_certificate,
)
from ledger.service.models import ACTIVITIES
from ledger.service.records import ServiceRecordView, describe, my_service_records, record_in, service_records_in
