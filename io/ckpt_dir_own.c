// A checkpoint directory owned by one run (see ckpt_dir_own.h). The lock is an open-file-description
// lock (F_OFD_SETLK): it belongs to the descriptor, not to the process, so no other open of the
// lock file inside fnn can drop it, and the kernel releases it whenever the process ends, killed
// or not, so a crashed job never leaves the directory locked.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "io/checkpoint.h"
#include "io/ckpt_dir_own.h"

static int lock_fd = -1; // held until the process ends

// mkdir -p: every missing component of dir, in order.
static int make_dirs(const char* dir)
{
    char path[CONFIG_PATH];
    snprintf(path, sizeof path, "%s", dir);
    for (char* s = path + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = '\0';
        if (mkdir(path, 0777) && errno != EEXIST) return -1;
        *s = c;
        if (!c) break;
    }
    struct stat sb;
    if (stat(dir, &sb)) return -1;
    if (!S_ISDIR(sb.st_mode)) return errno = ENOTDIR, -1;
    return 0;
}

// Creating and removing a file is the only honest test of writability: access() says yes to
// root whatever the mode, and says nothing of a full or read-only file system's quirks.
static int probe(const char* dir)
{
    char path[CONFIG_PATH + 64];
    snprintf(path, sizeof path, "%s/.fnn-probe-%ld", dir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    close(fd);
    return unlink(path);
}

// "host H pid P" of the job holding the lock, from the lock file (sanitised: it is only text).
static void holder(int fd, char* out, size_t len)
{
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    for (char* p = buf; *p; p++)
        if (*p < ' ' || *p > '~') *p = '?';
    snprintf(out, len, "%s", buf[0] ? buf : "holder unknown");
}

// Errors of a file system that has no locks at all (Lustre mounted without flock, some NFS; a
// kernel before 3.15 has no F_OFD_SETLK: EINVAL): the lock is a safeguard, not a reason to
// refuse the run.
static int no_locks(int e)
{
    return e == ENOSYS || e == ENOLCK || e == EOPNOTSUPP || e == EINVAL;
}

static int take_lock(const char* dir, char* err, size_t errlen)
{
    char path[CONFIG_PATH + 16];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: cannot open the lock file (%s)", path,
                 fd < 0 ? (errno == ELOOP ? "it is a symbolic link" : strerror(errno)) : "not a regular file");
        if (fd >= 0) close(fd);
        return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int e = fcntl(fd, F_OFD_SETLK, &fl) ? errno : 0;
    if (no_locks(e)) {
        fprintf(stderr, "fnn: warning: ckpt_dir = %s: the file system cannot lock %s (%s); "
                "continuing unlocked: run no second job on this directory\n", dir, path, strerror(e));
    } else if (e) {
        char who[256];
        holder(fd, who, sizeof who);
        if (e == EAGAIN || e == EACCES)
            snprintf(err, errlen, "ckpt_dir = %s is in use by another job (%s; lock file %s)", dir,
                     who, path);
        else
            snprintf(err, errlen, "%s: cannot lock (%s)", path, strerror(e));
        close(fd);
        return -1;
    }
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    char text[320];
    int n = snprintf(text, sizeof text, "host %s pid %ld\n", host, (long)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, text, (size_t)n, 0) != n) {
        snprintf(err, errlen, "%s: cannot write the lock file (%s)", path, strerror(errno));
        close(fd);
        return -1;
    }
    lock_fd = fd;
    return 0;
}

// Temporary files left by a job that was killed while saving: with the lock held, no save is
// under way. unlink removes a planted link, never its target.
static void remove_stale(const char* dir)
{
    DIR* d = opendir(dir);
    if (!d) return;
    for (struct dirent* e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        int tmp = n > 4 && !strcmp(e->d_name + n - 4, ".tmp");
        if (!tmp || (strncmp(e->d_name, "step-", 5) && strcmp(e->d_name, "latest.tmp") &&
                     strcmp(e->d_name, "best.tmp"))) continue;
        char path[CONFIG_PATH + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!unlink(path)) printf("removed %s, left by an interrupted save\n", path);
    }
    closedir(d);
}

int ckpt_dir_claim(const char* dir, dist_grid* g, char* err, size_t errlen)
{
    int bad = 0;
    err[0] = '\0';
    if (g->world_rank == 0) {
        if (make_dirs(dir))
            bad = snprintf(err, errlen, "ckpt_dir = %s: cannot create the directory (%s)", dir,
                           strerror(errno)) > 0;
        else if (probe(dir))
            bad = snprintf(err, errlen, "ckpt_dir = %s: cannot create files in it (%s)", dir,
                           strerror(errno)) > 0;
        else
            bad = take_lock(dir, err, errlen) != 0;
        if (!bad) remove_stale(dir);
    }
    // Rank 0 alone found the verdict; all must leave together.
    return dist_any(bad, g) ? -1 : 0;
}

static void new_run_id(char* out)
{
    unsigned char b[8];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        unsigned long x = (unsigned long)time(NULL) * 2654435761u ^ (unsigned long)getpid();
        memcpy(b, &x, sizeof b);
    }
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

// The name among names[0 .. n) in dir that is the file at path (same inode, whatever the path's
// spelling or links), or NULL.
static const char* among(const char* dir, char** names, int n, const char* path)
{
    struct stat want, sb;
    if (!path || stat(path, &want)) return NULL;
    for (int i = 0; i < n; i++) {
        char p[CONFIG_PATH + 32];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (!stat(p, &sb) && sb.st_dev == want.st_dev && sb.st_ino == want.st_ino) return names[i];
    }
    return NULL;
}

// Rank 0: the checkpoints in dir of runs other than run_id; removes them with overwrite (but
// refuses if one is the file `keep`, this run's init_from), otherwise refuses naming the newest.
static int foreign(const char* dir, const char* run_id, int overwrite, const char* keep,
                   char* err, size_t errlen)
{
    char** names;
    int n = ckpt_dir_list(dir, &names), bad = 0;
    const char* kept = overwrite ? among(dir, names, n, keep) : NULL;
    if (kept)
        bad = snprintf(err, errlen, "ckpt_overwrite = true would remove init_from = %s (it is %s/%s): "
                       "copy it out of ckpt_dir = %s first", keep, dir, kept, dir) > 0;
    for (int i = n - 1; i >= 0 && !bad; i--) {
        char path[CONFIG_PATH + 32], id[CKPT_RUN_ID];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ckpt_run_id(path, id, sizeof id);
        if (!strcmp(id, run_id)) continue;
        if (!overwrite) {
            snprintf(err, errlen, "ckpt_dir = %s holds checkpoints of another run (%s, run id %s): "
                     "set resume = auto to continue it, or ckpt_overwrite = true to start over",
                     dir, names[i], id[0] ? id : "not recorded");
            bad = 1;
        } else if (remove(path)) {
            snprintf(err, errlen, "%s: cannot remove (%s)", path, strerror(errno));
            bad = 1;
        } else {
            printf("ckpt_overwrite = true: removed %s (run id %s)\n", path, id[0] ? id : "not recorded");
        }
    }
    if (n >= 0) ckpt_dir_list_free(names, n);
    // The pointers named the removed files.
    for (int i = 0; i < 2 && !bad && overwrite; i++) {
        char pointer[CONFIG_PATH + 16];
        snprintf(pointer, sizeof pointer, "%s/%s", dir, i ? "best" : "latest");
        if (unlink(pointer) && errno != ENOENT) {
            snprintf(err, errlen, "%s: cannot remove (%s)", pointer, strerror(errno));
            bad = 1;
        }
    }
    return bad;
}

int ckpt_dir_adopt(const char* dir, const char* resumed, int overwrite, const char* keep,
                   char* run_id, dist_grid* g, char* err, size_t errlen)
{
    int bad = 0;
    err[0] = '\0';
    if (g->world_rank == 0) {
        if (resumed) ckpt_run_id(resumed, run_id, CKPT_RUN_ID);
        // A checkpoint from before run ids continues as a lineage of its own.
        if (!resumed || !run_id[0]) new_run_id(run_id);
        if (!resumed) bad = foreign(dir, run_id, overwrite, keep, err, errlen);
        fflush(stdout);
    }
    // Rank 0 chose the id and judged the directory: one broadcast carries both to all.
    char msg[CKPT_RUN_ID + 1];
    memcpy(msg, run_id, CKPT_RUN_ID);
    msg[CKPT_RUN_ID] = (char)bad;
    dist_bcast_bytes(msg, sizeof msg, g);
    memcpy(run_id, msg, CKPT_RUN_ID);
    return msg[CKPT_RUN_ID] ? -1 : 0;
}
