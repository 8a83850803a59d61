# finkdl — `make test` is the one command CI runs (through .ci/run).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test unit soak bench demo clean broker-jars fuzz

test: $(STAMP) broker-jars
	$(BIN)/pytest -q -m "not soak" --durations=10

unit: $(STAMP)
	$(BIN)/pytest -q -m "not broker and not soak"

soak: $(STAMP) broker-jars
	FINKDL_SOAK=1 $(BIN)/pytest -q -s tests/test_faults.py tests/test_s3_download.py

bench: $(STAMP) broker-jars
	@# bytecode, as pip install leaves it (fink-client's own virtualenv has it), even where
	@# PYTHONDONTWRITEBYTECODE is set: else every finkdl run compiles finkdl first (~0.1 s)
	$(BIN)/python -m compileall -q finkdl workers
	$(BIN)/python bench/run.py
	$(BIN)/python bench/hats.py

demo: $(STAMP) broker-jars
	$(BIN)/finkdl demo

# Differential fuzzing of the C decoder against fastavro, built with AddressSanitizer + UBSan
# into build/sanitized (the in-place build the tests use stays as it is): make fuzz SECONDS=1200.
# gcc's sanitizer runtimes come with it on Debian (else: apt-get install -y libasan8 libubsan1).
SECONDS ?= 300
SANITIZED := build/sanitized/_avro.so

fuzz: $(STAMP)
	mkdir -p $(dir $(SANITIZED))
	gcc -shared -fPIC -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	    -fno-sanitize-recover=undefined \
	    -I"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("include"))')" \
	    finkdl/_avro.c -o $(SANITIZED)
	$(BIN)/python tests/fuzzing.py --seconds $(SECONDS) --sanitized $(SANITIZED) --findings build/fuzz

broker-jars: $(STAMP)
	$(BIN)/python -c "from finkdl.local.broker import kafka_jars; print(kafka_jars())"

$(STAMP): setup.cfg setup.py pyproject.toml finkdl/_avro.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache finkdl/*.so
