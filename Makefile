# The two commands a new user runs:  make demo   and   make test.
# Each installs missing Debian packages, configures, builds and runs.
# The work is CMake's; this file only strings the steps together.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# CMake's makefiles recurse; keep their directory chatter out of the output.
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=
DEMOS = frames seed one_call detached uv_visit packet_pipeline fanout

.PHONY: all demo test test-plain test-asan test-tsan bench clean model \
	fuzz soak soak-plain soak-tsan lint valgrind docs consumers

all: build/release/.configured
	cmake --build build/release -j $(JOBS)

build/release/.configured: CMakeLists.txt Makefile
	scripts/deps.sh build
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DHB_BUILD_TESTS=OFF \
	  -DHB_BUILD_EXAMPLES=ON $(CMAKE_FLAGS) >/dev/null
	@touch $@

demo: all
	@for d in $(DEMOS); do \
	  if [ -x build/release/examples/$$d ]; then \
	    echo "==> examples/$$d"; build/release/examples/$$d || exit 1; echo; \
	  fi; \
	done

# Tests: a debug build (invariant and misuse checks on), then the same suite
# under ASan+UBSan, then under TSan.
define hb_test_build
	cmake -S . -B build/$(1) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
	  -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DHB_BUILD_EXAMPLES=OFF $(2) $(CMAKE_FLAGS) >/dev/null
	cmake --build build/$(1) -j $(JOBS)
	cd build/$(1) && ctest --output-on-failure -j $(JOBS) $(3)
endef

test: test-plain test-asan test-tsan

test-plain:
	scripts/deps.sh test
	$(call hb_test_build,test,,)

test-asan:
	scripts/deps.sh test
	$(call hb_test_build,asan,-DHB_ASAN=ON -DHB_UBSAN=ON,)

test-tsan:
	scripts/deps.sh test
	$(call hb_test_build,tsan,-DHB_TSAN=ON,)

# Hardening (issue 6): the fuzzer for FUZZ_SECONDS, the soak for
# SOAK_SECONDS under the plain debug build, static analysis, and the test
# suite under valgrind memcheck.  .ci/run runs all four after `make test`.
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 30

fuzz:
	scripts/deps.sh test
	scripts/fuzz.sh $(FUZZ_SECONDS)

SOAK_TSAN_SECONDS ?= 15

# The soak alone, longer than in `make test`: debug build, then under TSan.
soak: soak-plain soak-tsan
soak-plain: export HB_SOAK_SECONDS = $(SOAK_SECONDS)
soak-plain:
	scripts/deps.sh test
	$(call hb_test_build,test,,-R test_soak -V)
soak-tsan: export HB_SOAK_SECONDS = $(SOAK_TSAN_SECONDS)
soak-tsan:
	scripts/deps.sh test
	$(call hb_test_build,tsan,-DHB_TSAN=ON,-R test_soak -V)

lint:
	scripts/lint.sh

valgrind:
	scripts/valgrind.sh

# The bias revocation, the visitor protocol and the contended hand-off (the
# queue and the NEXT slot), model-checked with spin (tests/model), each
# also with bugs put back, which it must find.
model:
	scripts/model.sh

# Packaging (issue 15): install to temporary prefixes and build and run
# consumers through pkg-config and CMake (scripts/consumers.sh).
consumers:
	JOBS=$(JOBS) scripts/consumers.sh

# The API reference from the headers' comments, Doxygen, warnings fatal
# (an undocumented public name fails): build/docs/html/index.html.
docs:
	scripts/docs.sh

# The same -O2 for the library and every C/C++ peer (Debian builds GLib,
# libevent and hiredis with -O2); Rust peers use cargo's --release.
bench:
	scripts/deps.sh bench
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DHB_BUILD_TESTS=OFF \
	  -DHB_BUILD_EXAMPLES=OFF -DHB_BUILD_BENCH=ON \
	  -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
	  -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" $(CMAKE_FLAGS) >/dev/null
	cmake --build build/bench -j $(JOBS)
	scripts/bench.sh build/bench

clean:
	rm -rf build
