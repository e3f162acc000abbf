# fnn: `make` builds build/fnn; `make test`, `make demo` and `make bench` install missing Debian
# packages first (make deps). Dependencies are found with pkg-config; override PKGS or the flags.
CC       = mpicc
PKGS    ?= ompi hdf5-openmpi scalapack-openmpi openblas inih
OPT     ?= -O3 -march=native
CFLAGS  += $(OPT) -std=c11 -D_GNU_SOURCE -fno-math-errno -Wall -Wextra -Werror -I. -MMD -MP
CFLAGS  += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lmvec -lm
DEBS     = libopenmpi-dev openmpi-bin libopenblas-dev libscalapack-openmpi-dev libhdf5-openmpi-dev \
           hdf5-tools libinih-dev pkg-config fortunes procps
# Ranks for the MPI tests; root needs the two OMPI_ALLOW variables.
MPIRUN  ?= env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun

LIBSRC   = $(wildcard dist/*.c model/*.c io/*.c)
MATHSRC  = $(wildcard dist/*.c model/*.c)
LIBOBJ   = $(LIBSRC:%.c=build/%.o)
MATHOBJ64 = $(MATHSRC:%.c=build/f64/%.o)
APPOBJ   = $(patsubst %.c,build/%.o,$(wildcard launch/*.c))
TESTS    = $(patsubst tests/%.c,build/tests/%,$(wildcard tests/test_*.c))
TESTS64  = $(patsubst tests/%.c,build/tests/%,$(wildcard tests/grad_*.c))

all: build/fnn

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
# The version and flags are compiled into io/build.c; its object is rebuilt when they change.
build/io/build.o: CFLAGS += -DFNN_VERSION='"$(VERSION)"' -DFNN_OPT='"$(OPT)"'
build/io/build.o: build/version.txt
build/version.txt: FORCE
	@mkdir -p build
	@echo '$(VERSION) $(OPT)' | cmp -s - $@ || echo '$(VERSION) $(OPT)' > $@

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/f64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DFNN_DOUBLE -c $< -o $@

build/libfnn.a: $(LIBOBJ)
	ar rcs $@ $^

build/libfnn64.a: $(MATHOBJ64)
	ar rcs $@ $^

build/fnn: $(APPOBJ) build/libfnn.a
	$(CC) $(CFLAGS) $(APPOBJ) build/libfnn.a $(LDLIBS) -o $@

build/tests/test_%: tests/test_%.c tests/check.h build/libfnn.a
	@mkdir -p build/tests
	$(CC) $(CFLAGS) $< build/libfnn.a $(LDLIBS) -o $@

# The tool that damages files for tests/e2e_hostile.sh.
build/tests/h5craft: tests/h5craft.c
	@mkdir -p build/tests
	$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

build/tests/grad_%: tests/grad_%.c tests/check.h build/libfnn64.a
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -DFNN_DOUBLE $< build/libfnn64.a $(LDLIBS) -o $@

deps:
	@missing=""; for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

test: deps
	$(MAKE) build/fnn $(TESTS) $(TESTS64) build/tests/h5craft
	MPIRUN="$(MPIRUN)" sh tests/run.sh $(TESTS) $(TESTS64) $(wildcard tests/e2e_*.sh)

# The hostile-input suite and the file-reading tests on an ASan + UBSan build: a copy of the
# sources in build/asan/src built there with the sanitizers (any report fails the test).
ASAN_OPT = -O1 -g -march=native -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
test-asan: deps
	rm -rf build/asan && mkdir -p build/asan/src
	tar -c --exclude=./build --exclude=./.git . | tar -x -C build/asan/src
	$(MAKE) -C build/asan/src OPT="$(ASAN_OPT)" build/fnn build/tests/h5craft build/tests/test_checkpoint build/tests/test_dataset
	cd build/asan/src && ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  MPIRUN="$(MPIRUN)" sh tests/run.sh build/tests/test_checkpoint build/tests/test_dataset tests/e2e_hostile.sh

demo: deps
	$(MAKE) build/fnn
	MPIRUN="$(MPIRUN)" sh launch/demo.sh

bench: deps
	$(MAKE) build/fnn
	MPIRUN="$(MPIRUN)" sh launch/bench.sh

clean:
	rm -rf build

.PHONY: all deps test test-asan demo bench clean FORCE
-include $(LIBOBJ:.o=.d) $(MATHOBJ64:.o=.d) $(APPOBJ:.o=.d)
