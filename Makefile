# fnn: `make` builds build/fnn; `make test`, `make demo` and `make bench` install missing Debian
# packages first (make deps). Everything below can be set on the command line (README, Building):
# the compiler (CC), the pkg-config modules (PKGS; empty to give the flags by hand), extra
# CFLAGS, LDFLAGS and LDLIBS, and the code generation: every file for OPT, whose -march is the
# oldest CPU the binary runs on, the hot loops' variants (model/*_avx512.c, model/*_avx2.c) also
# for AVX512 / AVX2, chosen at start-up by the CPU (model/kernel.h), the bf16 kernels
# (model/*_avx512bf16.c) for AVX512 and BF16, run only where the CPU has them, and model/kernel.c for plain
# x86-64 so that a CPU below OPT gets a line saying so instead of SIGILL.
CC       = mpicc
PKGS    ?= ompi hdf5-openmpi scalapack-openmpi openblas inih
TUNE    ?= -mtune=native
OPT     ?= -O3 -march=x86-64-v3 $(TUNE)
AVX512  ?= -march=x86-64-v4 $(TUNE)
AVX2    ?= -march=x86-64-v3 $(TUNE)
BF16    ?= -mavx512bf16
PKG_CFLAGS := $(if $(PKGS),$(shell pkg-config --cflags $(PKGS) 2>/dev/null))
PKG_LIBS   := $(if $(PKGS),$(shell pkg-config --libs $(PKGS) 2>/dev/null))
FNN_CFLAGS = $(OPT) $(ISA) $(DEFS) -std=c11 -D_GNU_SOURCE -fno-math-errno -Wall -Wextra -Werror -I. -MMD -MP \
             $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
FNN_LIBS   = $(LDFLAGS) $(PKG_LIBS) $(LDLIBS) -lmvec -lm
MISSING_PKGS := $(if $(PKGS),$(shell for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || printf '%s ' $$p; done))
ifneq ($(MISSING_PKGS),)
ifeq ($(filter deps test test-slurm scaling-report demo finetune-demo large adding cells-lm bench test-asan clean,$(MAKECMDGOALS)),)
$(error pkg-config finds no $(MISSING_PKGS)(PKGS): run `make deps`, or see README, Building)
endif
endif
DEBS     = libopenmpi-dev openmpi-bin libopenblas-dev libscalapack-openmpi-dev libhdf5-openmpi-dev \
           hdf5-tools libinih-dev pkg-config fortunes procps python3
# The Slurm test (tests/e2e_slurm.sh) and the scaling report's plots.
DEBS    += munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins iproute2 gnuplot-nox
# Ranks for the MPI tests; root needs the two OMPI_ALLOW variables.
MPIRUN  ?= env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun

# The library: the layers below the commands (README, Source layout), linked by build/fnn and
# the tests alike.
LIBSRC   = $(wildcard dist/*.c model/*.c io/*.c run/*.c)
MATHSRC  = $(wildcard dist/*.c model/*.c)
LIBOBJ   = $(LIBSRC:%.c=build/%.o)
MATHOBJ64 = $(MATHSRC:%.c=build/f64/%.o)
APPOBJ   = $(patsubst %.c,build/%.o,$(wildcard launch/*.c))
TESTS    = $(patsubst tests/%.c,build/tests/%,$(wildcard tests/test_*.c))
TESTS64  = $(patsubst tests/%.c,build/tests/%,$(wildcard tests/grad_*.c))
# The helpers the C tests include (check.h and the ones they share: batch.h, layouts.h, ...).
TESTH    = $(wildcard tests/*.h)

all: build/fnn

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
FLAGS_TEXT = $(OPT); avx512 variant: $(AVX512); avx2 variant: $(AVX2)
# The extensions a set of flags enables beyond plain x86-64, named as model/cpu.c's table names
# them: every macro __NAME__ 1 that the flags define and the same flags at -march=x86-64 (no
# -m options) do not, lower case, '_' as '.' (__SSE4_2__: sse4.2). model/kernel.c refuses a
# name its table does not know rather than assume the CPU has it.
isa_macros = $(CC) $(1) -dM -E -x c /dev/null 2>/dev/null | sed -n 's/^\#define __\([A-Z0-9_]*\|3dNOW[A-Z_]*\)__ 1$$/\1/p'
isa_of = $(shell base="$$($(call isa_macros,$(filter-out -march=% -m%,$(1)) -march=x86-64))"; \
    $(call isa_macros,$(1)) | grep -vxF -e "$$base" | tr A-Z_ a-z. | sort | tr '\n' ' ')
# The version and flags are compiled into io/build_info.c and model/kernel.c, which are rebuilt when
# they change; kernel.c runs before anything else, on any x86-64.
build/io/build_info.o: DEFS = -DFNN_VERSION='"$(VERSION)"' -DFNN_FLAGS='"$(FLAGS_TEXT)"'
build/model/kernel.o build/f64/model/kernel.o build/model/cpu.o build/f64/model/cpu.o: ISA = -march=x86-64 -mtune=generic
build/model/kernel.o build/f64/model/kernel.o: DEFS = -DFNN_ISA_BASE='"$(call isa_of,$(OPT))"' -DFNN_ISA_AVX2='"$(call isa_of,$(OPT) $(AVX2))"' \
    -DFNN_ISA_AVX512='"$(call isa_of,$(OPT) $(AVX512))"' -DFNN_ISA_BF16='"$(call isa_of,$(OPT) $(AVX512) $(BF16))"' \
    -DFNN_BASE_FLAGS='"$(OPT)"'
build/%_avx512.o: ISA = $(AVX512)
build/%_avx512bf16.o: ISA = $(AVX512) $(BF16)
build/%_avx2.o: ISA = $(AVX2)
build/io/build_info.o build/model/kernel.o build/f64/model/kernel.o: build/version.txt
build/version.txt: FORCE
	@mkdir -p build
	@echo '$(VERSION) $(FLAGS_TEXT) $(CC)' | cmp -s - $@ || echo '$(VERSION) $(FLAGS_TEXT) $(CC)' > $@

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(FNN_CFLAGS) -c $< -o $@

build/f64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(FNN_CFLAGS) -DFNN_DOUBLE -c $< -o $@

# Rebuilt whole: ar would keep the member of a renamed or deleted source, which then shadows the
# current definition at link time.
build/libfnn.a: $(LIBOBJ)
	rm -f $@ && ar rcs $@ $^

build/libfnn64.a: $(MATHOBJ64)
	rm -f $@ && ar rcs $@ $^

build/fnn: $(APPOBJ) build/libfnn.a
	$(CC) $(FNN_CFLAGS) $(APPOBJ) build/libfnn.a $(FNN_LIBS) -o $@

build/tests/test_%: tests/test_%.c $(TESTH) build/libfnn.a
	@mkdir -p build/tests
	$(CC) $(FNN_CFLAGS) $< build/libfnn.a $(FNN_LIBS) -o $@

# The tool that damages files for tests/e2e_hostile.sh.
build/tests/h5craft: tests/h5craft.c
	@mkdir -p build/tests
	$(CC) $(FNN_CFLAGS) $< $(FNN_LIBS) -o $@

# The LD_PRELOAD shim that fails writes on one rank for tests/e2e_ioerror.sh.
build/tests/failwrite.so: tests/failwrite.c
	@mkdir -p build/tests
	$(CC) -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -shared -fPIC $< -ldl -o $@

build/tests/grad_%: tests/grad_%.c $(TESTH) build/libfnn64.a
	@mkdir -p build/tests
	$(CC) $(FNN_CFLAGS) -DFNN_DOUBLE $< build/libfnn64.a $(FNN_LIBS) -o $@

deps:
	@sh tools/deps.sh "$(DEBS)" "$(PKGS)" "$(firstword $(CC))"

test: deps
	$(MAKE) build/fnn $(TESTS) $(TESTS64) build/tests/h5craft build/tests/failwrite.so
	MPIRUN="$(MPIRUN)" sh tests/run.sh $(TESTS) $(TESTS64) $(wildcard tests/e2e_*.sh)

# The hostile-input suite and the file-reading tests on an ASan + UBSan build: a copy of the
# sources in build/asan/src built there with the sanitizers (any report fails the test).
ASAN_OPT = -O1 -g -march=native -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
test-asan: deps
	rm -rf build/asan && mkdir -p build/asan/src
	tar -c --exclude=./build --exclude=./.git . | tar -x -C build/asan/src
	$(MAKE) -C build/asan/src OPT="$(ASAN_OPT)" build/fnn build/tests/h5craft build/tests/test_checkpoint build/tests/test_dataset build/tests/test_h5
	cd build/asan/src && ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  MPIRUN="$(MPIRUN)" sh tests/run.sh build/tests/test_checkpoint build/tests/test_dataset build/tests/test_h5 tests/e2e_hostile.sh

demo: deps
	$(MAKE) build/fnn
	MPIRUN="$(MPIRUN)" sh tools/demo.sh

finetune-demo: deps
	$(MAKE) build/fnn
	MPIRUN="$(MPIRUN)" sh tools/finetune_demo.sh

# The billion-parameter feedback RNN of configs/large.ini: plan, train, checkpoint, resume
# (tools/large.sh; about 20 minutes and 22 GB of this machine's 24).
large: deps
	$(MAKE) build/fnn
	MPIRUN="$(MPIRUN)" sh tools/large.sh

# The adding problem (README, Long-memory benchmarks): CELL, ACT, INIT, LR, STEPS, T, NP and
# ADDING_SET are passed to tools/adding.sh, e.g. make adding ACT=relu INIT=identity LR=1e-4.
adding: deps
	$(MAKE) build/fnn
	MPIRUN="$(MPIRUN)" CELL="$(CELL)" ACT="$(ACT)" INIT="$(INIT)" LR="$(LR)" STEPS="$(STEPS)" \
	  T="$(T)" NP="$(NP)" ADDING_SET="$(ADDING_SET)" sh tools/adding.sh

# The fortunes LM with every cell at equal parameters and equal wall-clock (BUDGET
# seconds of training each): one table row per cell.
cells-lm: deps
	$(MAKE) build/fnn
	sh tools/cells_lm.sh

bench: deps
	$(MAKE) build/fnn
	MPIRUN="$(MPIRUN)" sh tools/bench.sh

# The streamed loader on generated corpora of SIZES GB (default 1 3 6) past 2^31 bytes: prepare's
# and each rank's peak memory, tokens/s; BEFORE=old/build/fnn interleaves an in-memory build.
stream-bench: deps
	$(MAKE) build/fnn
	MPIRUN="$(MPIRUN)" BEFORE="$(BEFORE)" SIZES="$(or $(SIZES),1 3 6)" sh tools/stream_bench.sh

# The extension names isa_of gives OPT (tests/e2e_kernel.sh holds -march=native's against
# model/cpu.c's table).
isa-names:
	@echo $(call isa_of,$(OPT))

# The Slurm checks alone (make test runs them too).
test-slurm: deps
	$(MAKE) build/fnn
	@mkdir -p build/tests
	MPIRUN="$(MPIRUN)" sh tests/run.sh tests/e2e_slurm.sh

# The scaling study on a two-node Slurm of this machine and its table and plots (build/scaling/).
# slurm/report CSV... makes them from CSVs of a real cluster.
scaling-report: deps
	$(MAKE) build/fnn
	bash tests/slurm/study.sh build/scaling

clean:
	rm -rf build

.PHONY: all deps test test-asan test-slurm scaling-report demo finetune-demo large adding cells-lm bench stream-bench isa-names clean FORCE
-include $(LIBOBJ:.o=.d) $(MATHOBJ64:.o=.d) $(APPOBJ:.o=.d)
