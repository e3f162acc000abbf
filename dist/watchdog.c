// The watchdog thread sleeps on a condition variable until the armed deadline. It never calls
// MPI: the process runs at MPI_THREAD_SINGLE, where only the main thread may. On firing it prints
// its line and _exits; the launcher (mpirun, srun) sees a rank end without MPI_Finalize and kills
// every other process of the job (SIGKILL ends a stopped process too).
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "dist/watchdog.h"

#define HOST_LEN 64
// The watchdog thread's longest sleep, and how late past it a wake-up means that the process was
// stopped meanwhile (seconds).
#define DIST_WATCHDOG_TICK 1.0
#define DIST_WATCHDOG_LATE 1.0

typedef struct peer {
    char host[HOST_LEN];
    long pid;
} peer;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int on, armed;  // armed: the current step or save has a deadline
    int running;    // a step or save is in progress since `started` (timed, armed or not)
    int saving;     // it is a save
    long step;      // the step, or the step saved
    struct timespec started, deadline;
    double seconds, save_seconds; // > 0: fixed; < 0: automatic; 0: none
    double floor, save_floor;     // automatic: the least limit
    double slowest, slowest_save; // automatic: the slowest step, save timed so far, seconds
    long timed;     // steps timed so far
    double bytes;   // of the current save, for the message
    double limit;   // of the current step or save, for the message
    int rank, size;
    peer* peers; // every rank's host and pid, by world rank
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER};

// Linux /proc/<pid>/stat: "pid (comm) S ...": state T (stopped) or t (stopped by a tracer).
static int is_stopped(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE* f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char* p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
}

static void __attribute__((noreturn)) fire(int saving, long step, double limit)
{
    const peer* me = &wd.peers[wd.rank];
    char stopped[1024] = "";
    size_t used = 0;
    int lowest_running = wd.rank;
    for (int r = 0; r < wd.size; r++) {
        const peer* p = &wd.peers[r];
        if (r == wd.rank || strcmp(p->host, me->host)) continue;
        if (is_stopped(p->pid)) {
            if (used < sizeof stopped)
                used += (size_t)snprintf(stopped + used, sizeof stopped - used, "%srank %d (host %s, pid %ld)",
                                         used ? ", " : "", r, p->host, p->pid);
        } else if (r < lowest_running) {
            lowest_running = r;
        }
    }
    // The ranks of one host see the same stopped peers: the lowest running one reports at once,
    // the others a moment later, in case it cannot.
    if (lowest_running != wd.rank) sleep(2);
    char rule[200];
    if ((saving ? wd.save_seconds : wd.seconds) > 0)
        snprintf(rule, sizeof rule, "%g s", saving ? wd.save_seconds : wd.seconds);
    else if (saving)
        snprintf(rule, sizeof rule, "auto (%.3g MiB at %g MiB/s, %d x the slowest save so far, %.3g s, "
                 "at least %g s)", wd.bytes / 1048576, DIST_WATCHDOG_SAVE_RATE / 1048576,
                 DIST_WATCHDOG_FACTOR, wd.slowest_save, wd.save_floor);
    else
        snprintf(rule, sizeof rule, "auto (%d x the slowest step so far, %.3g s, at least %g s)",
                 DIST_WATCHDOG_FACTOR, wd.slowest, wd.floor);
    // 3 digits, whole seconds from 1000 s on (a save's 1800 s, not 1.8e+03).
    char after[32];
    snprintf(after, sizeof after, limit >= 1000 ? "%.0f" : "%.3g", limit);
    fprintf(stderr, "fnn: error: %s = %s: %s %ld has not finished on rank %d (host %s) "
                    "after %s s; %s%s\n", saving ? "ckpt_timeout" : "step_timeout", rule,
            saving ? "the checkpoint save of step" : "step", step, wd.rank, me->host, after,
            used ? "stopped: " : "no rank of this host is stopped (a rank elsewhere, or this one, is stuck)",
            stopped);
    fflush(stderr);
    _exit(1);
}

static double seconds_between(const struct timespec* a, const struct timespec* b)
{
    return (double)(b->tv_sec - a->tv_sec) + 1e-9 * (double)(b->tv_nsec - a->tv_nsec);
}

static struct timespec seconds_after(const struct timespec* t, double seconds)
{
    struct timespec d = *t;
    double whole = floor(seconds);
    d.tv_sec += (time_t)whole;
    d.tv_nsec += (long)((seconds - whole) * 1e9);
    if (d.tv_nsec >= 1000000000L) d.tv_sec++, d.tv_nsec -= 1000000000L;
    return d;
}

static int before(const struct timespec* a, const struct timespec* b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

// Wakes at least every DIST_WATCHDOG_TICK seconds (a quarter of the limit, if less): a wake-up
// much later than asked means this process was stopped meanwhile (SIGSTOP, a job suspended by
// the scheduler). The step then gets the time it was away and at least a whole limit from the
// resume, so that a job suspended and resumed as a whole goes on, and a stopped rank that the
// launcher continues in order to kill it does not report itself.
static void* watch(void* arg)
{
    (void)arg;
    pthread_mutex_lock(&wd.mu);
    for (;;) {
        if (!wd.armed) {
            pthread_cond_wait(&wd.cv, &wd.mu);
            continue;
        }
        long step = wd.step;
        int saving = wd.saving;
        double limit = wd.limit;
        struct timespec deadline = wd.deadline, now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct timespec wake = seconds_after(&now, fmin(DIST_WATCHDOG_TICK, limit / 4));
        if (before(&deadline, &wake)) wake = deadline;
        int r = pthread_cond_timedwait(&wd.cv, &wd.mu, &wake);
        // Re-armed for a later step or a save, or disarmed meanwhile: start over with the new state.
        if (r != ETIMEDOUT || !wd.armed || wd.step != step || wd.saving != saving ||
            wd.deadline.tv_sec != deadline.tv_sec || wd.deadline.tv_nsec != deadline.tv_nsec)
            continue;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double away = seconds_between(&wake, &now);
        if (away > DIST_WATCHDOG_LATE) {
            wd.deadline = seconds_after(&deadline, away);
            struct timespec whole = seconds_after(&now, limit);
            if (before(&wd.deadline, &whole)) wd.deadline = whole;
            continue;
        }
        if (!before(&now, &deadline)) {
            pthread_mutex_unlock(&wd.mu);
            fire(saving, step, limit);
        }
    }
    return NULL;
}

// Rank 0's value of the environment variable `name`, else `least`.
static double auto_floor(dist_grid* g, const char* name, double least)
{
    const char* v = getenv(name);
    if (g->world_rank == 0 && v && *v) {
        char* end;
        least = strtod(v, &end);
        if (*end || !isfinite(least) || least <= 0)
            dist_fail("%s = %s: must be a number of seconds > 0", name, v);
    }
    // One floor for the job: a rank launched with another environment must not fire first.
    dist_bcast_bytes(&least, sizeof least, g);
    return least;
}

void dist_watchdog_start(dist_grid* g, double step_seconds, double save_seconds)
{
    if (step_seconds == 0 && save_seconds == 0) return;
    wd.seconds = step_seconds;
    wd.save_seconds = save_seconds;
    if (step_seconds < 0) wd.floor = auto_floor(g, "FNN_STEP_TIMEOUT_FLOOR", DIST_WATCHDOG_FLOOR);
    if (save_seconds < 0) wd.save_floor = auto_floor(g, "FNN_CKPT_TIMEOUT_FLOOR", DIST_WATCHDOG_SAVE_FLOOR);
    wd.rank = g->world_rank;
    wd.size = g->world_size;
    wd.peers = calloc((size_t)wd.size, sizeof *wd.peers);
    if (!wd.peers) dist_fail("out of memory for the watchdog");
    peer me = {.pid = (long)getpid()};
    gethostname(me.host, HOST_LEN - 1);
    double t0 = MPI_Wtime();
    // Once per run: a rank whose watchdog fires names the stopped peers of its host by pid.
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, wd.peers, (int)sizeof me, MPI_BYTE, g->world);
    dist_counted(g, DIST_ALLGATHER, t0);
    // Deadlines on the monotonic clock: a change of the wall clock neither fires nor delays it.
    pthread_condattr_t ca;
    pthread_t t;
    if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
        pthread_cond_init(&wd.cv, &ca) || pthread_create(&t, NULL, watch, NULL))
        dist_fail("cannot start the watchdog thread");
    pthread_condattr_destroy(&ca);
    pthread_detach(t);
    wd.on = 1;
}

// The step or save in progress, if any, ends at `now` (the caller holds wd.mu).
static void end_step(const struct timespec* now)
{
    if (!wd.running) return;
    const double took = seconds_between(&wd.started, now);
    if (wd.saving)
        wd.slowest_save = fmax(wd.slowest_save, took);
    else
        wd.slowest = fmax(wd.slowest, took), wd.timed++;
    wd.running = 0;
}

// A step (saving 0) or save of `step` starts now with `limit` seconds, 0 = none.
static void start(int saving, long step, double limit, const struct timespec* now)
{
    wd.started = *now;
    wd.running = 1;
    wd.saving = saving;
    wd.step = step;
    wd.limit = limit;
    wd.armed = wd.limit > 0;
    if (wd.armed) wd.deadline = seconds_after(now, wd.limit);
    pthread_cond_signal(&wd.cv);
}

void dist_watchdog_arm(long step)
{
    if (!wd.on) return;
    pthread_mutex_lock(&wd.mu);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    end_step(&now);
    start(0, step, wd.seconds > 0 ? wd.seconds
                 : wd.seconds == 0 || wd.timed < DIST_WATCHDOG_WARMUP ? 0
                 : fmax(wd.floor, DIST_WATCHDOG_FACTOR * wd.slowest), &now);
    pthread_mutex_unlock(&wd.mu);
}

void dist_watchdog_save(long step, double bytes)
{
    if (!wd.on) return;
    pthread_mutex_lock(&wd.mu);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    end_step(&now);
    wd.bytes = bytes;
    start(1, step, wd.save_seconds >= 0 ? wd.save_seconds
                 : fmax(wd.save_floor, fmax(bytes / DIST_WATCHDOG_SAVE_RATE,
                                            DIST_WATCHDOG_FACTOR * wd.slowest_save)), &now);
    pthread_mutex_unlock(&wd.mu);
}

void dist_watchdog_disarm(void)
{
    if (!wd.on) return;
    pthread_mutex_lock(&wd.mu);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    end_step(&now);
    wd.armed = 0;
    pthread_cond_signal(&wd.cv);
    pthread_mutex_unlock(&wd.mu);
}
