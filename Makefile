# Convenience wrapper around CMake. The real build is CMakeLists.txt; these
# targets only name the usual ways of driving it.
#
#   make run        build and start gearboxd on 127.0.0.1:7411, data in ./data
#   make test       build into build/ and run every test (what CI runs first)
#   make test-asan  the same under AddressSanitizer + UBSan, in build-asan/
#   make build      configure and build into build/
#   make fuzz       build the libFuzzer targets with clang, in build-fuzz/
#   make fuzz-ci    build them and fuzz each for its share of FUZZ_SECONDS
#                   (what CI runs third; ASan + UBSan, libraries instrumented)
#   make fuzz-long  the long tier: fuzz until each target has had an hour,
#                   cumulative across runs (tests/fuzz/fuzz-long.sh)
#   make bench      build and run build/bench/gearbox-bench
#   make format     clang-format every C source in place
#   make clean      remove every build directory
#
# Variables: JOBS (parallel jobs, default 2), NO_DEPS=1 (skip
# scripts/install-deps.sh), TEST_LABELS (a ctest -L regex; empty = all tests),
# BENCH_ARGS (arguments for gearbox-bench), LISTEN and DATA (for run),
# BUILD / ASAN_BUILD / FUZZ_BUILD (build directories), FUZZ_SECONDS (total
# fuzzing seconds of fuzz-ci, split evenly between the targets; default 300).

JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
BUILD_TYPE ?= RelWithDebInfo
# Empty runs every test: the default CI tier is all tests for now. Set to a
# ctest label regex (e.g. "quick") to run a subset.
TEST_LABELS ?=
LISTEN ?= 127.0.0.1:7411
DATA ?= ./data
BENCH_ARGS ?=
FUZZ_SECONDS ?= 300

CMAKE_GEN := -G "Unix Makefiles"
# One build/ serves run, test and bench, so `make run` starts the binary
# `make test` tested; warnings are errors there as in CI.
CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DGBX_WERROR=ON -DGBX_SANITIZE=OFF
ASAN_FLAGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DGBX_WERROR=ON -DGBX_SANITIZE=ON
FUZZ_FLAGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DGBX_FUZZ=ON \
              -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
CTEST_FLAGS := --output-on-failure --no-tests=error -j$(JOBS) \
               $(if $(TEST_LABELS),-L '$(TEST_LABELS)')
# Sanitizer reports must fail the run: UBSan stops at the first report, ASan
# also checks for leaks at exit.
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# cmake --build runs make recursively; its directory chatter hides errors.
MAKEFLAGS += --no-print-directory

FORMAT_DIRS := protocol server client tests bench
FORMAT_FILES = $(shell find $(FORMAT_DIRS) -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null)

.PHONY: all deps configure build run test test-asan fuzz fuzz-ci fuzz-long bench format format-check clean

all: build

deps:
ifneq ($(NO_DEPS),1)
	./scripts/install-deps.sh
endif

configure: deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# Builds only the server, so `make run` works while a test does not compile.
run: configure
	cmake --build $(BUILD) -j$(JOBS) --target gearboxd
	exec $(BUILD)/server/gearboxd --listen $(LISTEN) --data $(DATA)

test: build
	ctest --test-dir $(BUILD) $(CTEST_FLAGS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) $(ASAN_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	$(SAN_ENV) ctest --test-dir $(ASAN_BUILD) $(CTEST_FLAGS)

fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) $(FUZZ_FLAGS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@echo "fuzzers are in $(FUZZ_BUILD)/tests/; run one as: $(FUZZ_BUILD)/tests/fuzz_NAME tests/fuzz/corpus/fuzz_NAME"

# Only the fuzzers and the libraries they test are built; their ctest runs
# (label fuzz-ci) go two at a time, so the wall time is about half of
# FUZZ_SECONDS plus the build.
fuzz-ci: deps
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) $(FUZZ_FLAGS) -DGBX_FUZZ_CI_SECONDS=$(FUZZ_SECONDS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target gbx_fuzzers
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure --no-tests=error -j$(JOBS) -L '^fuzz-ci$$'

fuzz-long: deps
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) $(FUZZ_FLAGS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target gbx_fuzzers
	tests/fuzz/fuzz-long.sh $(FUZZ_BUILD)

bench: build
	@test -x $(BUILD)/bench/gearbox-bench || { \
	  echo "make bench: $(BUILD)/bench/gearbox-bench was not built;" \
	       "bench/CMakeLists.txt must define the gearbox-bench target" >&2; exit 1; }
	exec $(BUILD)/bench/gearbox-bench $(BENCH_ARGS)

format:
	$(if $(FORMAT_FILES),clang-format -i $(FORMAT_FILES),@echo "format: no C sources found")

format-check:
	$(if $(FORMAT_FILES),clang-format --dry-run -Werror $(FORMAT_FILES),@echo "format-check: no C sources found")

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-broken
