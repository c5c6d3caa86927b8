from tests.factories import enrolled


def test_enrolment_creates_nine_visits(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=100)
    assert participant.visits.count() == 9
