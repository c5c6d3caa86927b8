# The two commands of README: `make run` and `make test`. Only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANAGE := DEBUG=1 $(BIN)/python manage.py
# `make run` keeps its terminal for the summary: task logs go to var/log, the demo's emails to var/mail.
# The development server's audit HMAC key (git-ignored) is generated once; production keeps its key elsewhere.
DEV_AUDIT_KEY := .audit-hmac-key
RUN_ENV := AUDIT_HMAC_KEY_FILE=$(DEV_AUDIT_KEY) LOG_FILE=var/log/edc.log \
	EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend EMAIL_FILE_PATH=var/mail

.PHONY: run test install lint format clean

run: install $(DEV_AUDIT_KEY)
	@$(RUN_ENV) $(MANAGE) compile_translations
	@$(RUN_ENV) $(MANAGE) migrate --noinput -v0
	@$(RUN_ENV) $(MANAGE) load_protocol
	@$(RUN_ENV) $(MANAGE) seed_demo
	@echo "Serving on http://127.0.0.1:8000 : log in as coordinator1, monitor, investigator1, datamanager or sponsor,"
	@echo "password demo-password (every demo user in README.md). Logs: var/log/edc.log; emails: var/mail/."
	@$(RUN_ENV) $(MANAGE) runserver 127.0.0.1:8000

$(DEV_AUDIT_KEY):
	@umask 077 && $(BIN)/python -c "import secrets; print('dev-' + secrets.token_hex(4) + ':' + secrets.token_hex(32))" > $@

test: install
	$(MANAGE) compile_translations
	$(BIN)/ruff check .
	$(BIN)/pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles media
