// fnn plot: the training and validation loss and the tokens/s of one or several runs against the
// step, from their metrics files, as one PNG drawn by gnuplot (pngcairo): a panel of losses and
// one of tokens/s, one colour per run, named in the legend by its file. World rank 0 reads and
// plots; a failure there ends the job, and a broadcast gives every rank the same status.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/paths.h"
#include "launch/commands.h"
#include "run/metrics_read.h"

#define PLOT_USAGE "usage: fnn plot --out FILE.png [--names A,B,...] [--table FILE] [--size WxH] METRICS..."

typedef struct plot_args {
    const char* out;    // the PNG
    const char* table;  // where to write the data blocks gnuplot is given, or NULL
    const char* names;  // the runs' names in the legend, comma-separated, or NULL: the files'
    long width, height; // pixels
    const char** files; // (nfiles) the metrics files
    int nfiles;
} plot_args;

static const char* option_value(int argc, char** argv, int* i)
{
    if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2))
        dist_fail("fnn plot: option %s needs a value; %s", argv[*i], PLOT_USAGE);
    return argv[++*i];
}

// "WxH", each a whole integer from 100 to 10000 pixels.
static void parse_size(const char* s, plot_args* a)
{
    char* end;
    errno = 0;
    a->width = strtol(s, &end, 10);
    if (!errno && end != s && *end == 'x') {
        const char* h = end + 1;
        a->height = strtol(h, &end, 10);
        if (!errno && end != h && !*end && a->width >= 100 && a->width <= 10000 &&
            a->height >= 100 && a->height <= 10000)
            return;
    }
    dist_fail("fnn plot: option --size: '%s' is not WxH with W and H from 100 to 10000 pixels", s);
}

// Fills a from argv (argv[0] is "plot"). Returns 1 for --help; usage errors end the job.
static int parse_args(int argc, char** argv, plot_args* a)
{
    *a = (plot_args){.width = 900, .height = 700, .files = calloc(argc, sizeof *a->files)};
    if (!a->files) dist_fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char* o = argv[i];
        if (!strcmp(o, "--help")) return 1;
        if (!strcmp(o, "--out")) a->out = option_value(argc, argv, &i);
        else if (!strcmp(o, "--table")) a->table = option_value(argc, argv, &i);
        else if (!strcmp(o, "--names")) a->names = option_value(argc, argv, &i);
        else if (!strcmp(o, "--size")) parse_size(option_value(argc, argv, &i), a);
        else if (!strncmp(o, "--", 2)) dist_fail("fnn plot: unknown option %s; %s", o, PLOT_USAGE);
        else a->files[a->nfiles++] = o;
    }
    if (!a->out || !a->nfiles) dist_fail("fnn plot: needs --out and at least one metrics file; %s", PLOT_USAGE);
    return 0;
}

// The outputs: files (not FIFOs or devices) that overwrite no input.
static void check_outputs(const plot_args* a)
{
    const char* out[2] = {a->out, a->table};
    const char* what[2] = {"--out", "--table"};
    char why[512];
    for (int k = 0; k < 2 && out[k]; k++) {
        if (paths_check_kind(out[k], PATHS_FILE, 1, why, sizeof why)) dist_fail("%s %s: %s", what[k], out[k], why);
        if (paths_refuse_overwrite(what[k], out[k], a->files, a->nfiles, why, sizeof why)) dist_fail("%s", why);
    }
    if (a->table && !strcmp(a->out, a->table)) dist_fail("--table %s is --out as well", a->table);
}

// Control characters (a newline would end gnuplot's line) shown as '?'.
static char* tidy(char* name)
{
    for (char* c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return name;
}

// A run's name in the legend: its file's name without the directory and the extension, or, when
// two runs would share a name, the path as given without the extension.
static char* run_name(const char* path, int whole)
{
    const char* base = whole ? path : strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char* name = strdup(base);
    if (!name) dist_fail("out of memory");
    char* dot = strrchr(name, '.');
    if (dot && dot != name && !strchr(dot, '/')) *dot = 0;
    return tidy(name);
}

static void file_names(const plot_args* a, char** name)
{
    int whole = 0;
    for (int k = 0; k < a->nfiles; k++) name[k] = run_name(a->files[k], 0);
    for (int k = 0; k < a->nfiles; k++)
        for (int j = 0; j < k; j++) whole |= !strcmp(name[j], name[k]);
    for (int k = 0; whole && k < a->nfiles; k++) free(name[k]), name[k] = run_name(a->files[k], 1);
}

// --names: one non-empty name per file, in their order.
static void given_names(const plot_args* a, char** name)
{
    const char* p = a->names;
    for (int k = 0; k < a->nfiles; k++) {
        size_t n = strcspn(p, ",");
        if (!n || (k + 1 < a->nfiles && !p[n]) || (k + 1 == a->nfiles && p[n]))
            dist_fail("fnn plot: --names '%s': needs %d names (non-empty, separated by commas), one per metrics file", a->names, a->nfiles);
        name[k] = strndup(p, n);
        if (!name[k]) dist_fail("out of memory");
        tidy(name[k]);
        p += n + (p[n] == ',');
    }
}

// s as a gnuplot double-quoted string: " and \ escaped. Not single-quoted: gnuplot 5.4 takes a
// name with two quotes in a row, written 'a (ii'''') b', for a string that ends early.
static void put_quoted(FILE* f, const char* s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

// Every run's series as gnuplot data blocks $train<k> (step loss tokens_per_s) and $val<k> (step
// val_loss), exactly (17 digits), and only those with rows: gnuplot refuses an empty block.
static void write_blocks(FILE* f, const metrics_series* s, char* const* name, int n)
{
    for (int k = 0; k < n; k++) {
        if (s[k].n_train) {
            fprintf(f, "$train%d << EOD\n# %s: step loss tokens_per_s\n", k, name[k]);
            for (long i = 0; i < s[k].n_train; i++)
                fprintf(f, "%ld %.17g %.17g\n", s[k].train_step[i], s[k].loss[i], s[k].tokens_per_s[i]);
            fprintf(f, "EOD\n");
        }
        if (s[k].n_val) {
            fprintf(f, "$val%d << EOD\n# %s: step val_loss\n", k, name[k]);
            for (long i = 0; i < s[k].n_val; i++) fprintf(f, "%ld %.17g\n", s[k].val_step[i], s[k].val_loss[i]);
            fprintf(f, "EOD\n");
        }
    }
}

// One colour per run (gnuplot's own cycle is pale after the fourth).
static const char* const colour[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                     "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// The panels: losses (thin training lines, the validation scores as large points joined by thick
// dashes on top of them) and, when any run has training rows, tokens/s. The margins are set (the
// right one from the longest name) so that the two panels' step axes line up.
static void write_plots(FILE* f, const plot_args* a, const metrics_series* s, char* const* name, int n)
{
    int any_train = 0;
    size_t longest = 0;
    for (int k = 0; k < n; k++) {
        any_train |= s[k].n_train > 0;
        if (strlen(name[k]) > longest) longest = strlen(name[k]);
    }
    // The legend's width: about 8 pixels a character of "NAME train" and 70 for the sample.
    double right = 1 - (((double)longest + 6) * 8 + 70) / a->width;
    right = right < 0.45 ? 0.45 : right > 0.85 ? 0.85 : right;
    fprintf(f, "set terminal pngcairo size %ld,%ld noenhanced\nset output ", a->width, a->height);
    put_quoted(f, a->out);
    fprintf(f, "\nset multiplot layout %d,1\nset grid\nset key outside right top\n"
               "set lmargin at screen %.3f\nset rmargin at screen %.3f\nset xlabel 'step'\n"
               "set ylabel 'loss'\nplot ", any_train ? 2 : 1, 105.0 / a->width, right);
    const char* sep = "";
    for (int k = 0; k < n; k++) {
        char title[1024];
        if (s[k].n_train) {
            fprintf(f, "%s$train%d using 1:2 with lines lw 1 lc rgb '%s' title ", sep, k, colour[k % 8]);
            snprintf(title, sizeof title, "%s train", name[k]);
            put_quoted(f, title);
            sep = ", ";
        }
        if (s[k].n_val) {
            fprintf(f, "%s$val%d using 1:2 with linespoints dt 2 pt 7 ps 1.3 lw 2.5 lc rgb '%s' title ", sep, k, colour[k % 8]);
            snprintf(title, sizeof title, "%s val", name[k]);
            put_quoted(f, title);
            sep = ", ";
        }
    }
    if (any_train) {
        fprintf(f, "\nset ylabel 'tokens/s'\nplot ");
        sep = "";
        for (int k = 0; k < n; k++) {
            if (!s[k].n_train) continue;
            fprintf(f, "%s$train%d using 1:3 with lines lw 1 lc rgb '%s' title ", sep, k, colour[k % 8]);
            put_quoted(f, name[k]);
            sep = ", ";
        }
    }
    fprintf(f, "\nunset multiplot\nset output\n");
}

// Whether gnuplot is a program on PATH: checked first, for one line instead of the shell's.
static int have_gnuplot(void)
{
    const char* path = getenv("PATH");
    char* dirs = strdup(path ? path : "/usr/bin:/bin");
    if (!dirs) dist_fail("out of memory");
    int found = 0;
    for (char* d = strtok(dirs, ":"); d && !found; d = strtok(NULL, ":")) {
        char exe[4096];
        snprintf(exe, sizeof exe, "%s/gnuplot", *d ? d : ".");
        found = access(exe, X_OK) == 0;
    }
    free(dirs);
    return found;
}

// Runs gnuplot on the script; a failure, or a file that is not a PNG afterwards, ends the job.
static void run_gnuplot(const char* script, size_t len, const char* out)
{
    if (!have_gnuplot()) dist_fail("fnn plot: gnuplot is not on PATH (Debian: apt-get install gnuplot-nox)");
    // Opened here first, so that an output that cannot be written is named by fnn in one line.
    FILE* o = fopen(out, "w");
    if (!o) dist_fail("--out %s: cannot write (%s)", out, strerror(errno));
    fclose(o);
    // gnuplot's own messages go to stdout, so that stderr holds fnn's one line when it fails.
    fflush(stdout);
    FILE* g = popen("gnuplot 2>&1", "w");
    if (!g) dist_fail("fnn plot: cannot start gnuplot (%s)", strerror(errno));
    size_t put = fwrite(script, 1, len, g);
    int status = pclose(g);
    unsigned char head[8] = {0};
    FILE* png = fopen(out, "rb");
    size_t got = png ? fread(head, 1, sizeof head, png) : 0;
    if (png) fclose(png);
    if (put != len || status != 0 || got != 8 || memcmp(head, "\x89PNG\r\n\x1a\n", 8)) {
        unlink(out);
        dist_fail("--out %s: gnuplot failed (exit status %d); nothing written", out, status);
    }
}

static void write_table(const char* path, const char* blocks, size_t len)
{
    FILE* f = fopen(path, "w");
    if (!f) dist_fail("--table %s: cannot write (%s)", path, strerror(errno));
    int bad = fwrite(blocks, 1, len, f) != len;
    if (fclose(f) || bad) dist_fail("--table %s: cannot write (%s)", path, strerror(errno ? errno : EIO));
}

static void plot_on_root(const plot_args* a)
{
    check_outputs(a);
    metrics_series* s = calloc(a->nfiles, sizeof *s);
    char** name = calloc(a->nfiles, sizeof *name);
    if (!s || !name) dist_fail("out of memory");
    char why[1024];
    for (int k = 0; k < a->nfiles; k++) {
        if (paths_check_kind(a->files[k], PATHS_FILE, 0, why, sizeof why)) dist_fail("%s: %s", a->files[k], why);
        if (metrics_read(a->files[k], &s[k], why, sizeof why)) dist_fail("%s", why);
    }
    if (a->names) given_names(a, name);
    else file_names(a, name);
    char* blocks = NULL;
    size_t nblocks = 0;
    FILE* b = open_memstream(&blocks, &nblocks);
    if (!b) dist_fail("out of memory");
    write_blocks(b, s, name, a->nfiles);
    fclose(b);
    if (a->table) write_table(a->table, blocks, nblocks);
    char* script = NULL;
    size_t len = 0;
    FILE* sf = open_memstream(&script, &len);
    if (!sf) dist_fail("out of memory");
    fwrite(blocks, 1, nblocks, sf);
    write_plots(sf, a, s, name, a->nfiles);
    fclose(sf);
    run_gnuplot(script, len, a->out);
    printf("plotted %d run%s to %s (%ld x %ld)\n", a->nfiles, a->nfiles > 1 ? "s" : "", a->out, a->width, a->height);
    for (int k = 0; k < a->nfiles; k++) metrics_series_free(&s[k]), free(name[k]);
    free(s), free(name), free(blocks), free(script);
}

int cmd_plot(int argc, char** argv, dist_grid* world)
{
    int status = 0;
    if (world->world_rank == 0) {
        plot_args a;
        if (parse_args(argc, argv, &a)) printf("%s\n", PLOT_USAGE);
        else plot_on_root(&a);
        free(a.files);
    }
    dist_bcast_bytes(&status, sizeof status, world);
    return status;
}
