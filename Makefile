# Kairoscope. Bare `make` lists the targets.
GO      ?= go
BIN     ?= bin
PYTHON  ?= /usr/bin/python3
CC      ?= cc

# OpenBLAS runs the CPU engine's GEMMs about 5x faster than gonum's pure-Go
# BLAS (README, Performance), so builds link it when libopenblas-dev is
# installed. Recursive (=): evaluated when a recipe runs, after test-deps
# may have installed it. TAGS=openblas or TAGS= forces a choice.
HAVE_OPENBLAS = $(shell f=$$(mktemp) && printf 'int main(void){return 0;}' | $(CC) -x c - -lopenblas -o $$f 2>/dev/null && echo openblas; rm -f $$f)
TAGS ?= $(HAVE_OPENBLAS)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: deps-blas ## build bin/kairoscope (CPU only; OpenBLAS, installing libopenblas-dev when missing and possible, else pure Go)
	@$(blas-note)
	$(GO) build -tags '$(TAGS)' -o $(BIN)/kairoscope ./cmd/kairoscope

.PHONY: build-gpu
build-gpu: deps-gpu ## build bin/kairoscope and the GPU worker bin/kairoscope-cuda (tag gpu; needs only libcuda.so.1, loads cuBLAS 11/12/13 at run time)
	$(GO) build -tags '$(TAGS)' -o $(BIN)/kairoscope ./cmd/kairoscope
	$(GO) build -tags gpu -o $(BIN)/kairoscope-cuda ./cmd/kairoscope-cuda

# The GPU check: everything a GPU machine runs, built here (it has no Go).
# The binaries need only glibc and libcuda.so.1 to load (gpucheck prepare
# checks it); libstdc++ (the emulator's, in the benchmark binaries) is linked
# statically.
GPUCHECK ?= .gpucheck
GPU_LDFLAGS = -s -w -extldflags "-static-libstdc++ -static-libgcc"

.PHONY: gpu-check
gpu-check: deps-gpu ## build into .gpucheck/ what a GPU machine runs for the GPU check; it prints the command to run there
	rm -rf $(GPUCHECK) && mkdir -p $(GPUCHECK)/bin
	$(GO) build -trimpath -tags gpu -ldflags '$(GPU_LDFLAGS)' -o $(GPUCHECK)/bin/kairoscope-cuda ./cmd/kairoscope-cuda
	$(GO) test -c -trimpath -tags gpu -ldflags '$(GPU_LDFLAGS)' -o $(GPUCHECK)/bin/devicetest.test ./cuda/devicetest
	$(GO) test -c -trimpath -tags gpu -ldflags '$(GPU_LDFLAGS)' -o $(GPUCHECK)/bin/benchmarks-gpu.test ./benchmarks
	$(GO) build -trimpath -ldflags '$(GPU_LDFLAGS)' -o $(GPUCHECK)/bin/gpucheck ./benchmarks/cmd/gpucheck
	$(GO) run ./benchmarks/cmd/gpucheck prepare -dir $(GPUCHECK) -commit "$$(git describe --always --dirty 2>/dev/null || echo unknown)"

.PHONY: kernels
kernels: deps-gpu ## compile cuda/kernels/kernels.cu to the committed PTX with nvcc
	$(GO) generate ./cuda/kernels

.PHONY: web
web: ## re-vendor the dashboard's uPlot, web/static/vendor, from web/package-lock.json (npm ci)
	cd web && npm ci --no-audit --no-fund && npm run build

.PHONY: run
run: deps-blas ## run the service on its embedded default data (OpenBLAS build: installs libopenblas-dev when missing and possible)
	@$(blas-note)
	$(GO) run -tags '$(TAGS)' ./cmd/kairoscope serve

.PHONY: test
test: test-deps ## vet and run every test (CPU; the emulator stands in for the GPU)
	$(GO) vet ./...
	$(GO) vet -tags gpu ./...
	$(GO) vet -tags openblas ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags openblas ./engine/...
	$(GO) test -count=1 -race ./ws/... ./worker ./runlog ./agent
	$(MAKE) fuzz-short

# The fuzz targets: package, target, executions of the short run in make
# test (about 5 s each here). The short run counts executions, not
# seconds: a -fuzztime in seconds fails at random when it ends while a
# worker is busy (a race in Go 1.26's fuzz coordinator, go.dev/issue/75804).
FUZZ_TARGETS = \
	./engine/dataset:FuzzRead:200000 \
	./schema:FuzzDecodeRunRequest:150000 \
	./datasets:FuzzPut:3000 \
	./datasets:FuzzAppend:4000 \
	./runlog:FuzzEnvelope:20000 \
	./worker:FuzzWorkerStream:150000 \
	./ws/hub:FuzzClientFrames:8000

.PHONY: fuzz-short
fuzz-short: ## run every fuzz target briefly (its committed corpus, then a few thousand new inputs), as make test does
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest#*:}; \
	  echo "fuzz $$name ($$pkg): $${n} inputs"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $${n}x -fuzzminimizetime 2s $$pkg; \
	done

# RELIABILITY.md's figures: make fuzz FUZZTIME=10m.
FUZZTIME ?= 60s

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 60s): CSV loader, run request, dataset uploads and appends, log envelope, worker stream, client frames
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; \
	  echo "fuzz $$name ($$pkg): $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# wscat, the seed's WebSocket test tool, is pinned by the lockfile in
# WSCAT_DIR and installed there, not globally. The stamp is the lockfile it
# was installed from: a changed lockfile installs it again.
WSCAT_DIR = cmd/kairoscope/testdata/wscat
WSCAT_STAMP = $(WSCAT_DIR)/node_modules/.installed-package-lock.json

# The fault tests (cmd/kairoscope) run against Debian's nats-server 2.9
# besides the one built from go.mod; they start their own servers, so the
# package's system service is not wanted: where systemd runs, it is
# stopped and disabled right after the install.
.PHONY: test-deps
test-deps: deps-gpu ## install what the tests use, when missing: chromium, python3-websockets, python3-fastapi and python3-uvicorn, Qt 5 WebSockets and g++, npm, libopenblas-dev, nats-server, the CUDA toolkit (apt); wscat (npm ci)
	@missing=""; \
	  [ -n "$(HAVE_OPENBLAS)" ] || missing="$$missing libopenblas-dev"; \
	  command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  $(PYTHON) -c 'import websockets' >/dev/null 2>&1 || missing="$$missing python3-websockets"; \
	  $(PYTHON) -c 'import fastapi, uvicorn' >/dev/null 2>&1 || missing="$$missing python3-fastapi python3-uvicorn"; \
	  command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	  command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	  pkg-config --exists Qt5Core 2>/dev/null || missing="$$missing qtbase5-dev"; \
	  pkg-config --exists Qt5WebSockets 2>/dev/null || missing="$$missing libqt5websockets5-dev"; \
	  command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	  [ -x /usr/sbin/nats-server ] || missing="$$missing nats-server"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing$$missing"; \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$$missing; } || exit 1; \
	    case "$$missing" in *nats-server*) \
	      if [ -d /run/systemd/system ]; then systemctl disable --now nats-server || true; fi;; \
	    esac; \
	  fi
	@if ! cmp -s $(WSCAT_DIR)/package-lock.json $(WSCAT_STAMP) || [ ! -x $(WSCAT_DIR)/node_modules/.bin/wscat ]; then \
	  echo "installing wscat into $(WSCAT_DIR) (npm ci)"; \
	  (cd $(WSCAT_DIR) && npm ci --no-audit --no-fund) && cp $(WSCAT_DIR)/package-lock.json $(WSCAT_STAMP); \
	fi

# deps-blas installs libopenblas-dev when it is missing, as test-deps does,
# where that is possible (root and apt-get: a fresh Debian machine), so that
# `make run` and `make build` give the OpenBLAS build there. Elsewhere, or
# when apt-get fails, it says why and the build falls back to pure Go (TAGS
# is evaluated after it ran).
.PHONY: deps-blas
deps-blas: ## install libopenblas-dev with apt when missing (root on Debian), else say the build is pure Go
	@if [ -z "$(HAVE_OPENBLAS)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing libopenblas-dev (OpenBLAS: CPU training about 5x faster than pure Go)"; \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libopenblas-dev; } || \
	      echo "could not install libopenblas-dev: building with gonum's pure-Go BLAS"; \
	  else \
	    echo "libopenblas-dev is missing and cannot be installed here (needs root and apt-get): building with gonum's pure-Go BLAS"; \
	  fi; \
	fi

.PHONY: deps-gpu
deps-gpu: ## install Debian's CUDA 11.8 toolkit (nvcc, cuda.h, cuBLAS) from non-free, when missing
	@if ! command -v nvcc >/dev/null 2>&1 || [ ! -f /usr/include/cublas_v2.h ]; then \
	  echo "installing Debian's CUDA toolkit (contrib non-free)"; \
	  if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
	    sed -i 's/^Components: main$$/Components: main contrib non-free/' /etc/apt/sources.list.d/debian.sources; \
	  fi; \
	  if [ -f /etc/apt/sources.list ]; then \
	    sed -i -E 's/^(deb .* main)$$/\1 contrib non-free/' /etc/apt/sources.list; \
	  fi; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nvidia-cuda-dev nvidia-cuda-toolkit; \
	fi

.PHONY: deps-golden
deps-golden: ## install Debian's reference libraries used by the golden generators
	@$(PYTHON) -c 'import torch, sklearn, scipy, statsmodels' 2>/dev/null || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch python3-sklearn python3-scipy python3-statsmodels)

.PHONY: golden
golden: deps-golden ## regenerate the golden test values from the reference libraries
	$(PYTHON) engine/metrics/testdata/gen_golden.py
	$(PYTHON) engine/calib/testdata/gen_golden.py
	$(PYTHON) engine/ops/testdata/gen_golden.py

.PHONY: loadtest
loadtest: build ## RELIABILITY.md's load figures: 1,000 and 5,000 /ws clients during a real run (some stalled), then /ws/predict clients; JSON in benchmarks/results/
	@mkdir -p benchmarks/results
	$(GO) run ./cmd/loadgen --kairoscope $(BIN)/kairoscope --clients 1000 --slow 10 --predict 100 --baseline > benchmarks/results/load-1000.json
	$(GO) run ./cmd/loadgen --kairoscope $(BIN)/kairoscope --clients 5000 --slow 50 --predict 300 --baseline > benchmarks/results/load-5000.json

.PHONY: bench
bench: deps-bench ## time the CPU engine (GPU where present) against PyTorch and scaling, the forecast, and the hub with 1,000 clients on three paths: table + benchmarks/results/full.json
	$(GO) run ./benchmarks/cmd/bench -go $(GO) -python $(PYTHON)

.PHONY: bench-quick
bench-quick: deps-bench ## the default model only, 3 interleaved runs a side, the hub once a path (about 30 s): table + benchmarks/results/quick.json
	$(GO) run ./benchmarks/cmd/bench -quick -go $(GO) -python $(PYTHON)

# The peers make bench measures Kairoscope against, from Debian: PyTorch
# (benchmarks/peers/torch_mlp.py, run by $(PYTHON)), the seed's own stack
# FastAPI + uvicorn (fastapi_hub.py; python3-websockets is the WebSocket
# implementation uvicorn picks first) and R forecast's auto.arima
# (auto_arima.R). make bench installs them; make test installs only the
# FastAPI stack, whose peer the hub benchmark's test runs. A peer that
# cannot be installed is skipped, and the table says so.
.PHONY: deps-bench
deps-bench: deps-blas ## install the benchmark's peers (python3-torch; python3-fastapi, python3-uvicorn, python3-websockets; r-cran-forecast) with apt when missing (root on Debian), else say which are skipped
	@need=; \
	$(PYTHON) -c 'import torch' >/dev/null 2>&1 || need="$$need python3-torch"; \
	$(PYTHON) -c 'import fastapi, uvicorn, websockets' >/dev/null 2>&1 || need="$$need python3-fastapi python3-uvicorn python3-websockets"; \
	Rscript -e 'library(forecast)' >/dev/null 2>&1 || need="$$need r-cran-forecast"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$need (the benchmark's peers)"; \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$need; } || \
	      echo "could not install$$need: the benchmark skips the peers that need them and says so"; \
	  else \
	    echo "missing$$need, which cannot be installed here (needs root and apt-get): the benchmark skips the peers that need them and says so"; \
	  fi; \
	fi

# blas-note says which BLAS a build links, and how to get the faster one.
define blas-note
case "$(TAGS)" in *openblas*) echo "CPU engine: OpenBLAS";; *) echo "CPU engine: gonum's pure-Go BLAS (apt-get install libopenblas-dev for ~5x faster CPU training)";; esac
endef
