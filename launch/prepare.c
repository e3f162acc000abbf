// `fnn prepare`: world rank 0 converts the input files into one HDF5 dataset; a failure there
// aborts the whole job, and a broadcast of the status lets every rank return the same value.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/dataset.h"
#include "launch/commands.h"

#define PREPARE_USAGE                                                                         \
    "usage: fnn prepare --kind text|records|csv --out FILE [--val-fraction 0.1] [--inputs N] " \
    "[--seq-len S] FILE..."

typedef struct prepare_args {
    const char* kind;
    const char* out;
    double val_fraction;
    int inputs;         // csv: leading columns that are inputs (per step with seq_len)
    int seq_len;        // csv: steps of the one sequence on each line, 0 = one row per line
    const char** files; // (nfiles) the inputs, in class order for records
    int nfiles;
} prepare_args;

static const char* option_value(int argc, char** argv, int* i)
{
    if (*i + 1 >= argc)
        dist_fail("fnn prepare: option %s needs a value; %s", argv[*i], PREPARE_USAGE);
    return argv[++*i];
}

static double parse_fraction(const char* s)
{
    char* end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v < 1))
        dist_fail("fnn prepare: --val-fraction '%s': must be a number in [0, 1)", s);
    return v;
}

static int parse_count(const char* opt, const char* s)
{
    char* end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 1 << 24)
        dist_fail("fnn prepare: %s '%s': must be a positive integer", opt, s);
    return (int)v;
}

// Fills a from argv (argv[0] is "prepare"). Returns 1 for --help; usage errors end the job.
static int parse_args(int argc, char** argv, prepare_args* a)
{
    *a = (prepare_args){.val_fraction = 0.1, .files = calloc(argc, sizeof *a->files)};
    if (!a->files) dist_fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char* o = argv[i];
        if (!strcmp(o, "--help")) return 1;
        if (!strcmp(o, "--kind")) a->kind = option_value(argc, argv, &i);
        else if (!strcmp(o, "--out")) a->out = option_value(argc, argv, &i);
        else if (!strcmp(o, "--val-fraction"))
            a->val_fraction = parse_fraction(option_value(argc, argv, &i));
        else if (!strcmp(o, "--inputs")) a->inputs = parse_count(o, option_value(argc, argv, &i));
        else if (!strcmp(o, "--seq-len")) a->seq_len = parse_count(o, option_value(argc, argv, &i));
        else if (!strncmp(o, "--", 2))
            dist_fail("fnn prepare: unknown option %s; %s", o, PREPARE_USAGE);
        else a->files[a->nfiles++] = o;
    }
    if (!a->kind || !a->out || !a->nfiles)
        dist_fail("fnn prepare: needs --kind, --out and at least one input file; %s",
                  PREPARE_USAGE);
    return 0;
}

// Reopens the written file, which also proves it loads, and prints what it holds.
static void print_summary(const char* out)
{
    char err[1024];
    dataset* d = dataset_open(out, err, sizeof err);
    if (!d) dist_fail("%s", err);
    long train = dataset_length(d, SPLIT_TRAIN), val = dataset_length(d, SPLIT_VAL);
    if (dataset_kind(d) == DATA_TOKENS)
        printf("prepared %s: kind tokens, train %ld tokens, val %ld tokens\n", out, train, val);
    else if (dataset_kind(d) == DATA_SEQUENCES)
        printf("prepared %s: kind sequences, %d classes, train %ld records, val %ld records\n", out,
               dataset_nclasses(d), train, val);
    else if (dataset_seq_len(d))
        printf("prepared %s: kind dense, sequences of %d steps, %d inputs, %d outputs (one per "
               "sequence), train %ld sequences, val %ld sequences\n", out, dataset_seq_len(d),
               dataset_inputs(d), dataset_outputs(d), train, val);
    else
        printf("prepared %s: kind dense, %d inputs, %d outputs, train %ld rows, val %ld rows\n",
               out, dataset_inputs(d), dataset_outputs(d), train, val);
    fflush(stdout);
    dataset_free(&d);
}

static void prepare_on_root(int argc, char** argv)
{
    prepare_args a;
    char err[1024];
    if (parse_args(argc, argv, &a)) {
        printf("%s\n", PREPARE_USAGE);
    } else {
        if (dataset_prepare_steps(a.kind, a.files, a.nfiles, a.out, a.val_fraction, a.inputs,
                                  a.seq_len, err, sizeof err))
            dist_fail("%s", err);
        print_summary(a.out);
    }
    free(a.files);
}

int cmd_prepare(int argc, char** argv, dist_grid* world)
{
    int status = 0;
    if (world->world_rank == 0) prepare_on_root(argc, argv);
    dist_bcast_bytes(&status, sizeof status, world);
    return status;
}
