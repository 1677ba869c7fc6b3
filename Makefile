# windowlab: the two Quick-start commands. Both install what is missing first (idempotent);
# `make test` also installs the test tools (requirements/tests.txt), `make demo` does not.
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: install demo test

install:
	$(PYTHON) tools/install.py

demo: install
	$(PYTHON) tools/demo.py

test:
	$(PYTHON) tools/install.py --extras tests
	$(PYTHON) -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS)
