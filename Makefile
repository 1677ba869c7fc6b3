# windowlab: the two Quick-start commands. Both install what is missing first (idempotent).
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: install demo test

install:
	$(PYTHON) tools/install.py

demo: install
	$(PYTHON) tools/demo.py

test: install
	$(PYTHON) -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS)
