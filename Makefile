# The README's two commands: `make demo` (set up + main job) and `make test` (set up + lint + tests).
.PHONY: setup demo lint test test-all lab

setup:
	@bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

# ruff (configured in pyproject.toml) first: CI (.ci/run) runs `make test`, so a lint finding fails CI
lint: setup
	.venv/bin/ruff check lam_lab tests benchmarks

test: lint
	.venv/bin/python -m pytest -q

test-all: setup
	.venv/bin/python -m pytest -q -m ""

lab: setup
	.venv/bin/jupyter lab notebooks/00_lab.ipynb

.PHONY: test-browser
# JupyterLab + headless Chromium (/usr/bin/chromium) drive the Lab notebook and the player widget.
test-browser: setup
	.venv/bin/python -m pytest -q -m browser tests/test_browser.py tests/test_ui_player.py
