# The two commands of README: `make run` and `make test`. Only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANAGE := DEBUG=1 $(BIN)/python manage.py

.PHONY: run test install lint format clean

run: install
	$(MANAGE) compile_translations
	$(MANAGE) migrate --noinput
	$(MANAGE) load_protocol
	$(MANAGE) seed_demo
	@echo "Serving on http://127.0.0.1:8000 (demo users in README.md)"
	$(MANAGE) runserver 127.0.0.1:8000

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
