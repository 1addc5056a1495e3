# The two commands of the README:
#   make demo   set up, build the plugins, run the main job
#   make test   set up, build the plugins, run every test
SHELL := /bin/bash
export CAISSON_HOME ?= $(HOME)/.cache/caisson
export PATH := $(CAISSON_HOME)/venv/bin:$(PATH)

.PHONY: demo test setup plugins

demo: setup plugins
	cargo run --quiet -p caisson -- dev

test: setup plugins
	./scripts/check-boundaries
	cd plugins/js/caisson-workflow && node --import ./test/register-fake-host.js --test test/*.test.js
	cargo nextest run --workspace --no-fail-fast

setup:
	@./scripts/setup

plugins:
	cargo xtask plugins
