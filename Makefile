# The two front-door commands (README): `make demo` and `make test`.
.PHONY: demo test setup setup-test lock upgrade test-latest bench bench-load bench-instructions

# Set everything up, then run the server with the demo page on the embedded model.
demo: setup
	STREAMER_POLICY_PROVIDERS=$${STREAMER_POLICY_PROVIDERS:-local,echo,openai,anthropic} \
	  .venv/bin/streamer serve $(if $(PORT),--port $(PORT),)

# Set everything up (test tools, Debian's chromium), then run the whole test suite.
test: setup-test
	.venv/bin/python -m pytest

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

# uv.lock after a change to pyproject.toml (keeps every other pin where it is).
lock:
	scripts/lock.sh

# Move every pin to the newest release the ranges allow; then `make test` and commit.
upgrade:
	scripts/lock.sh --upgrade

# The canary: the newest releases the ranges allow, in .venv-latest, and the whole suite.
test-latest: setup-test
	scripts/test-latest.sh

bench: setup-test
	.venv/bin/python bench/chunker_bench.py
	.venv/bin/python bench/resume_bench.py
	.venv/bin/python -m bench --quick

# The load harness's full run (issue 16: fan-out to 1,000 streams, 10,000 idle connections;
# about ten minutes, server and load pinned to CPUs 0 and 1); tables in var/bench/.
bench-load: setup-test
	.venv/bin/python -m bench

# The chunker against the one-shot render in CPU instructions (needs valgrind; minutes).
bench-instructions: setup-test
	.venv/bin/python bench/chunker_instructions.py
