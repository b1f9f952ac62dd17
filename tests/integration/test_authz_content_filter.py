"""authz.content_filter is engagement_access and item_filter in one look-up: the same answer
for every user of the federation, on engagements at every TLP, named members or not."""

from __future__ import annotations

import pytest
from django.db.models import Q

from tests.conftest import Federation, accepted_engagement
from vcisc import authz
from vcisc.engagements.models import Engagement


def _expected(user: authz.User, eng: Engagement) -> Q | None:
    if authz.engagement_access(user, eng) is not authz.Access.CONTENT:
        return None
    return authz.item_filter(user, eng)


@pytest.mark.parametrize("tlp", ["red", "amber+strict", "green"])
def test_content_filter_is_access_and_item_filter_together(
    federation: Federation, tlp: str
) -> None:
    fed = federation
    eng_id = accepted_engagement(fed, tlp)
    # Named members: DE's liaison (who made the offer) and, added here, EE's analyst; DE's
    # analyst takes part without being named.
    resp = fed.api("ee").post(
        f"/engagements/{eng_id}/members", {"user_id": fed.users["ee_analyst"].pk}
    )
    assert resp.status_code == 201, resp.content
    eng = Engagement.objects.select_related("rfa").get(pk=eng_id)
    answers = {}
    for name, user in fed.users.items():
        user.refresh_from_db()
        got = authz.content_filter(user, eng)
        assert got == _expected(user, eng), name
        answers[name] = "none" if got is None else ("all" if got == Q() else "not red")
    # The comparison covered every kind of answer.
    assert answers["ee_analyst"] == "all" and answers["coordinator"] == "none", answers
    assert answers["de_analyst"] == "not red" and answers["fr"] == "none", answers
