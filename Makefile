# The two commands: `make demo` (corpus -> dense model -> pruning -> comparison -> report)
# and `make test`. Each sets up what it needs first (scripts/setup.sh).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
TCMALLOC := $(firstword $(wildcard /usr/lib/*/libtcmalloc_minimal.so.4))
PRELOAD := $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC),)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup test demo bench-tiny clean

setup:
	@bash scripts/setup.sh

test: setup
	$(PRELOAD) $(BIN)/python -m pytest

demo: setup
	$(PRELOAD) $(BIN)/asr-pathways demo

bench-tiny: setup
	$(PRELOAD) $(BIN)/asr-pathways bench --profile tiny

clean:
	rm -rf runs/demo data/demo
