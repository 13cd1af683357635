"""Database fixtures for dialer tests: one enterprise, some cases, an interviewer with an extension."""

from __future__ import annotations

from cati.db import transaction
from cati.models import Case
from tests import factories


def seed(factory, study, n=5, extension="1001"):
    with transaction(factory) as s:
        ent = factories.enterprise(s, study, quota=20)
        ids = factories.cases(s, study, ent, n)
        iv = factories.user(s, extension=extension)
        phones = {cid: s.get(Case, cid).phones[0].id for cid in ids}
        return {"enterprise_id": ent.id, "case_ids": ids, "phones": phones, "interviewer_id": iv.id}
