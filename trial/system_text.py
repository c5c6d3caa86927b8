"""Texts the system writes into records in English, shown in the reader's language.

The audit trail keeps the reasons the system writes in English whatever the user's language (the trail is read
years later, by people of any site); a page shows the known ones in the page's language. A reason a person typed
is shown as they typed it.
"""

from django.utils.translation import gettext
from django.utils.translation import gettext_noop as _

SYSTEM_REASONS = frozenset(
    {
        _("derived"),
        _("Signed data changed"),
        _("Lab proposal confirmed"),
        _("Schedule ended by death report"),
    }
)


def system_text(text: str) -> str:
    """A system-written reason in the active language; any other text as stored."""
    return gettext(text) if text in SYSTEM_REASONS else text


SYSTEM_USERNAME = "system"  # the name trial/audit.py writes for work no person did (lab grading, notices)


def system_user_label(username: str) -> str:
    """An audit record's user name as shown: the system by name in the active language, a person as logged in."""
    return gettext("System") if username in ("", SYSTEM_USERNAME) else username
