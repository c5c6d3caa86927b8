"""The project's settings plus the benchmark-only app `bench.flatcrf` (a plain Django admin baseline).

Used by bench/http_save.py alone; the project's own settings and migrations never name the app, and its table is
created with the throw-away test database (`migrate --run-syncdb` for an app without migrations).
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.flatcrf"]
