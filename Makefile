# Two commands: `make run` serves the site, `make test` runs the suite. Nothing else to install.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DJANGO_SETTINGS_MODULE := spaces_project.settings

.PHONY: run run-scaled test test-fast lint format migrate seed check-deploy bench clean

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	mkdir -p var/celery/queue var/celery/processed
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo
	DEBUG=$${DEBUG:-1} $(BIN)/honcho start -f Procfile

# The production shape on one machine: nginx, gunicorn (pages), two daphne (websockets),
# PostgreSQL, Redis, worker and beat.
run-scaled: $(STAMP)
	deploy/run-scaled.sh

migrate: $(STAMP)
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput

seed: $(STAMP)
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo

# DEBUG=1 only supplies a development secret key; pytest-django runs tests with DEBUG off.
test: $(STAMP)
	mkdir -p var
	DEBUG=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-deploy: $(STAMP)
	DEBUG=0 SECRET_KEY=$$(head -c 48 /dev/urandom | base64) ALLOWED_HOSTS=spaces.example.com \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var staticfiles
