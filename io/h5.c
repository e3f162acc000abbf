// fnn's only caller of the HDF5 library (see h5.h), with io/h5_array.c (the arrays of fnn
// prepare's files): checkpoints through the MPI-IO driver, and the local files of fnn prepare. HDF5's own error stack is silenced while a file is open: its
// multi-line dumps would bury the one-line message fnn prints.
//
// Why a digest attribute and not HDF5's Fletcher32 filter: the filter needs chunked datasets,
// and HDF5 1.10's collective writes of filtered chunks run 3-7x slower than plain contiguous
// ones. Measured 2026-11-28 on the build machine (one 256 MiB float32 dataset, one hyperslab
// per rank, create to close): contiguous 0.26-0.99 GB/s at np = 1 and 0.45-0.73 at np = 2;
// chunked (4 MiB) + Fletcher32 0.18-0.19 and 0.10-0.12; contiguous + this digest and its
// reduction 0.66-0.90 and 0.42-0.67. The digest alone runs at 9-10 GB/s per rank. The
// reservation (h5_reserve, fallocate before the writes) showed no cost above the noise of a
// loaded machine: 256 MiB at np = 2 took 1.05-2.8 s with it and 0.99-5.0 s without.
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dist/dist.h"
#include "io/errmsg.h"
#include "io/paths.h"
#include "io/h5.h"

_Static_assert(sizeof(real) == 4, "checkpoint digests are defined on float32 elements");

#define DIGEST "fnn_digest"

static int readback; // h5_set_readback

int h5_fail(h5file* h, const char* fmt, ...)
{
    if (h->failed) return -1;
    h->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    errmsg_v(h->err, h->errlen, h->path, fmt, ap);
    va_end(ap);
    return -1;
}

static int local(const h5file* h)
{
    return h->comm == MPI_COMM_NULL;
}

// Every rank ends with the same verdict on h (the message of the lowest failing rank).
static int agree(h5file* h)
{
    if (!local(h)) h->failed = dist_comm_agree(h->failed, h->err, h->errlen, h->comm);
    return h->failed;
}

int h5_agree(h5file* h)
{
    return agree(h);
}

static long opens; // h5_open_count

long h5_open_count(void)
{
    return opens;
}

// "obj/name" of an attribute, "/name" of the root's, for messages (a struct: C11 keeps a returned
// array alive to the end of the call that prints it).
typedef struct attr_name {
    char s[256];
} attr_name;

static attr_name attr_path(const char* obj, const char* name)
{
    attr_name a;
    snprintf(a.s, sizeof a.s, "%s/%s", strcmp(obj, "/") ? obj : "", name);
    return a;
}

static hid_t mpio_fapl(MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

static void begin(h5file* h, const char* path, MPI_Comm comm, int writing, char* err,
                  size_t errlen)
{
    *h = (h5file){.f = -1, .dxpl = -1, .comm = comm, .writing = writing, .path = path,
                  .err = err, .errlen = errlen};
    H5Eget_auto2(H5E_DEFAULT, &h->eh, &h->eh_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (local(h)) {
        h->dxpl = H5P_DEFAULT;
        return;
    }
    h5_ioerr_install(path, writing);
    // Reads are independent: a rank that finds a damaged dataset must not leave the others
    // inside a collective read.
    h->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (h->dxpl < 0 ||
        H5Pset_dxpl_mpio(h->dxpl, writing ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT) < 0)
        h5_fail(h, "cannot set up MPI-IO transfers");
}

int h5_create(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen)
{
    begin(h, path, comm, 1, err, errlen);
    hid_t fapl = mpio_fapl(comm);
    if (!h->failed) h->f = fapl < 0 ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (h->f < 0) h5_fail(h, "cannot create (does the directory exist and is it writable?)");
    // H5Fcreate is collective, but its outcome can differ between ranks.
    if (agree(h) && h->f >= 0) H5Fclose(h->f), h->f = -1;
    return h->failed;
}

int h5_create_local(h5file* h, const char* path, char* err, size_t errlen)
{
    begin(h, path, MPI_COMM_NULL, 1, err, errlen);
    h->f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (h->f < 0) h5_fail(h, "cannot create (does the directory exist and is it writable?)");
    return h->failed;
}

// Whether path is there and an HDF5 file, before HDF5 tries to open it and says less.
static void check_openable(h5file* h, const char* path)
{
    char why[256];
    // A FIFO or a device would block the open below or feed it endless bytes.
    if (paths_check_kind(path, PATHS_FILE, 0, why, sizeof why)) {
        h5_fail(h, "%s", why);
        return;
    }
    FILE* fp = fopen(path, "rb");
    if (!fp) h5_fail(h, "cannot open (%s)", strerror(errno));
    if (fp) fclose(fp);
    if (!h->failed && H5Fis_hdf5(path) <= 0) h5_fail(h, "not an HDF5 file");
}

int h5_open_local(h5file* h, const char* path, char* err, size_t errlen)
{
    begin(h, path, MPI_COMM_NULL, 0, err, errlen);
    check_openable(h, path);
    if (!h->failed) h->f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!h->failed && h->f < 0) h5_fail(h, "cannot open as HDF5 (truncated or corrupt file?)");
    return h->failed;
}

int h5_open(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen)
{
    begin(h, path, comm, 0, err, errlen);
    opens++;
    check_openable(h, path);
    // A file that only some ranks can see (another working directory, a node-local disk) is
    // refused by all before the collective open.
    if (agree(h)) return h->failed;
    hid_t fapl = mpio_fapl(comm);
    h->f = fapl < 0 ? -1 : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (h->f < 0) h5_fail(h, "cannot open as HDF5 (truncated or corrupt file?)");
    if (agree(h) && h->f >= 0) H5Fclose(h->f), h->f = -1;
    return h->failed;
}

void h5_reserve(h5file* h, size_t bytes)
{
    int rank;
    MPI_Comm_rank(h->comm, &rank);
    if (h->f >= 0 && rank == 0) {
        int fd = open(h->path, O_WRONLY | O_NOFOLLOW);
        // The file grows to the reservation; H5Fclose truncates it to HDF5's end of allocation.
        if (fd < 0 || (fallocate(fd, 0, 0, (off_t)bytes) &&
                       errno != EOPNOTSUPP && errno != ENOSYS))
            h5_fail(h, "cannot reserve %.1f MiB for the checkpoint (%s)", bytes / 1048576.0,
                    strerror(errno));
        if (fd >= 0) close(fd);
    }
    // Rank 0 alone knows whether the space is there; all ranks stop before writing if not.
    agree(h);
}

// ------------------------------------------------------------------------------------------------
// Digests

// Adds to s the digest parts of n consecutive elements at p, the first at flat index i0, and
// the count of non-finite ones.
static void digest_run(uint64_t s[3], const real* p, size_t n, uint64_t i0)
{
    uint64_t a = 0, c = 0, bad = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, p + j, sizeof u);
        a += u;
        c += j * u;
        bad += (u & 0x7f800000u) == 0x7f800000u; // all-ones exponent: Inf or NaN
    }
    s[0] += a;
    s[1] += (i0 + 1) * a + c;
    s[2] += bad;
}

// Digest parts of rows [r0, r1) of piece pc held at p.
static void digest_rows(uint64_t s[3], const h5_piece* pc, const real* p, int r0, int r1)
{
    for (int r = r0; r < r1; r++)
        digest_run(s, p + (size_t)r * pc->ld, (size_t)pc->ncols,
                   (uint64_t)(pc->row0 + r) * (uint64_t)pc->cols + (uint64_t)pc->col0);
}

static h5_sum* add_sum(h5file* h, const char* name)
{
    if (h->nsums == h->capsums) {
        int cap = h->capsums ? 2 * h->capsums : 64;
        h5_sum* s = realloc(h->sums, (size_t)cap * sizeof *s);
        if (!s) {
            h5_fail(h, "out of memory for the digests");
            return NULL;
        }
        h->sums = s;
        h->capsums = cap;
    }
    h5_sum* s = &h->sums[h->nsums++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

// The sum over ranks of every dataset's parts, in place; returns h->failed, agreed. Collective
// over h->comm.
static int sum_parts(h5file* h)
{
    uint64_t* v = calloc((size_t)h->nsums * 3 + 1, sizeof *v);
    if (!v) h5_fail(h, "out of memory for the digests");
    // Ranks hold the same list of datasets only if none failed: one that failed alone (a read
    // error, no memory for the list) may have recorded fewer, and a reduction of unequal counts
    // is undefined. A failed file needs no digest, so every rank stops here alike.
    if (agree(h)) {
        free(v);
        return 1;
    }
    for (int i = 0; i < h->nsums; i++) memcpy(v + 3 * i, h->sums[i].part, sizeof h->sums[i].part);
    dist_comm_sum_u64(v, 3 * h->nsums, h->comm);
    for (int i = 0; i < h->nsums; i++) memcpy(h->sums[i].part, v + 3 * i, sizeof h->sums[i].part);
    free(v);
    return 0;
}

// Writing: stores each dataset's digest as its attribute.
static void seal(h5file* h)
{
    if (sum_parts(h)) return;
    hsize_t two = 2;
    hid_t sp = H5Screate_simple(1, &two, NULL);
    for (int i = 0; i < h->nsums; i++) {
        hid_t ds = H5Dopen2(h->f, h->sums[i].name, H5P_DEFAULT);
        hid_t a = ds < 0 ? -1 : H5Acreate2(ds, DIGEST, H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT64, h->sums[i].part) < 0)
            h5_fail(h, "cannot write the digest of %s", h->sums[i].name);
        if (a >= 0) H5Aclose(a);
        if (ds >= 0) H5Dclose(ds);
    }
    H5Sclose(sp);
}

// Reading: every dataset read has a digest, matches it, and holds finite values only.
static void check(h5file* h)
{
    if (sum_parts(h)) return;
    for (int i = 0; i < h->nsums && !h->failed; i++) {
        const h5_sum* s = &h->sums[i];
        if (!s->stored)
            h5_fail(h, "dataset %s has no checksum (attribute %s): not written by this fnn, or "
                    "damaged", s->name, DIGEST);
        else if (s->part[0] != s->want[0] || s->part[1] != s->want[1])
            h5_fail(h, "dataset %s fails its checksum: the file was altered or damaged", s->name);
        else if (s->part[2])
            h5_fail(h, "dataset %s holds %llu non-finite values (NaN or Inf)", s->name,
                    (unsigned long long)s->part[2]);
    }
}

int h5_close(h5file* h)
{
    const int shared = !local(h);
    if (h->f >= 0 && shared && h->writing) seal(h);
    if (h->f >= 0 && shared && !h->writing) check(h);
    if (h->f >= 0) {
        // With the MPI-IO driver a global flush is MPI_File_sync: the data is on storage before
        // the caller renames the file into place.
        if (shared && h->writing && H5Fflush(h->f, H5F_SCOPE_GLOBAL) < 0) h5_fail(h, "cannot flush");
        if (H5Fclose(h->f) < 0) h5_fail(h, "cannot close (disk full?)");
    }
    if (shared && h->dxpl >= 0) H5Pclose(h->dxpl);
    h->f = h->dxpl = -1;
    free(h->sums);
    h->sums = NULL;
    h->nsums = h->capsums = 0;
    H5Eset_auto2(H5E_DEFAULT, h->eh, h->eh_data);
    return agree(h);
}

void h5_set_readback(int on)
{
    readback = on;
}

int h5_readback(const char* path, MPI_Comm comm, char* err, size_t errlen)
{
    if (!readback) return 0;
    h5file h;
    if (!h5_open(&h, path, comm, err, errlen)) h5_read_all(&h);
    if (!h5_close(&h)) return 0;
    const size_t used = strlen(err);
    snprintf(err + used, errlen - used, " (read back after the save: OMPI_MCA_io = %s)",
             getenv("OMPI_MCA_io"));
    return -1;
}

int h5_exists(h5file* h, const char* name)
{
    if (h->f < 0) return 0;
    if (!strcmp(name, "/")) return 1;
    // H5Lexists needs every intermediate link to exist: check "/a", then "/a/b", ...
    char part[256];
    snprintf(part, sizeof part, "%s", name);
    for (char* s = strchr(part + 1, '/');; s = strchr(s + 1, '/')) {
        if (s) *s = '\0';
        if (H5Lexists(h->f, part, H5P_DEFAULT) <= 0) return 0;
        if (!s) return 1;
        *s = '/';
    }
}

// ------------------------------------------------------------------------------------------------
// Attributes

// The group obj, created when writing and missing; -1 after recording a failure.
static hid_t group(h5file* h, const char* obj, int create)
{
    if (h->f < 0) return -1;
    if (h5_exists(h, obj)) {
        hid_t g = H5Oopen(h->f, obj, H5P_DEFAULT);
        if (g < 0) h5_fail(h, "cannot open %s (corrupt file?)", obj);
        return g;
    }
    if (!create) {
        h5_fail(h, "no group %s: not an fnn checkpoint", obj);
        return -1;
    }
    hid_t g = H5Gcreate2(h->f, obj, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) h5_fail(h, "cannot create group %s", obj);
    return g;
}

void h5_group(h5file* h, const char* name)
{
    hid_t g = group(h, name, 1);
    if (g >= 0 && H5Oclose(g) < 0) h5_fail(h, "cannot create group %s", name);
}

// Attribute obj/name of n values (n < 0: a scalar), stored as ftype, from memory of mtype.
static void put_n(h5file* h, const char* obj, const char* name, hid_t ftype, hid_t mtype, int n,
                  const void* v)
{
    hid_t g = group(h, obj, 1);
    if (g < 0) return;
    hsize_t dim = n > 0 ? (hsize_t)n : 0;
    hid_t sp = n >= 0 ? H5Screate_simple(1, &dim, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(g, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mtype, v) >= 0;
    if (a >= 0 && H5Aclose(a) < 0) ok = 0;
    if (!ok) h5_fail(h, "cannot write attribute %s", attr_path(obj, name).s);
    if (sp >= 0) H5Sclose(sp);
    H5Oclose(g);
}

static void put(h5file* h, const char* obj, const char* name, hid_t type, const void* v)
{
    put_n(h, obj, name, type, type, -1, v);
}

void h5_put_long(h5file* h, const char* obj, const char* name, long v)
{
    int64_t x = v;
    put(h, obj, name, H5T_NATIVE_INT64, &x);
}

void h5_put_u64(h5file* h, const char* obj, const char* name, uint64_t v)
{
    put(h, obj, name, H5T_NATIVE_UINT64, &v);
}

void h5_put_int(h5file* h, const char* obj, const char* name, int v)
{
    put_n(h, obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, -1, &v);
}

void h5_put_str(h5file* h, const char* obj, const char* name, const char* v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    put(h, obj, name, t, v);
    H5Tclose(t);
}

void h5_put_strs(h5file* h, const char* obj, const char* name, const char* const* s, int n)
{
    size_t width = 1;
    for (int i = 0; i < n; i++) width = strlen(s[i]) + 1 > width ? strlen(s[i]) + 1 : width;
    char* buf = calloc(n > 0 ? (size_t)n : 1, width);
    if (!buf) {
        h5_fail(h, "out of memory for attribute %s", attr_path(obj, name).s);
        return;
    }
    for (int i = 0; i < n; i++) memcpy(buf + i * width, s[i], strlen(s[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, width);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    put_n(h, obj, name, t, t, n, buf);
    H5Tclose(t);
    free(buf);
}

int h5_has_attr(h5file* h, const char* obj, const char* name)
{
    return h->f >= 0 && h5_exists(h, obj) && H5Aexists_by_name(h->f, obj, name, H5P_DEFAULT) > 0;
}

static const char* class_name(H5T_class_t cls)
{
    return cls == H5T_STRING ? "a string" : cls == H5T_INTEGER ? "an integer" : "a float";
}

// Opens attribute `name` of loc (obj/name in messages) and checks its class and that it holds
// exactly `count` elements, so no read can overrun the caller's buffer; -1 after recording a
// failure. *type gets the file type (closed by the caller).
static hid_t attr_at(h5file* h, hid_t loc, const char* obj, const char* name, H5T_class_t cls,
                     hssize_t count, hid_t* type)
{
    *type = -1;
    if (H5Aexists(loc, name) <= 0) {
        h5_fail(h, "no attribute %s: not an fnn checkpoint, or a damaged one", attr_path(obj, name).s);
        return -1;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0 && H5Tget_class(t) == cls && n == count) {
        *type = t;
        return a;
    }
    if (t < 0) h5_fail(h, "cannot open attribute %s (corrupt file?)", attr_path(obj, name).s);
    else if (H5Tget_class(t) != cls) h5_fail(h, "attribute %s is not %s", attr_path(obj, name).s, class_name(cls));
    else h5_fail(h, "attribute %s holds %lld values, not %lld", attr_path(obj, name).s, (long long)n,
                 (long long)count);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return -1;
}

// The scalar attribute obj/name: its handle and file type, or -1 after recording a failure.
static hid_t attr(h5file* h, const char* obj, const char* name, H5T_class_t cls, hid_t* g,
                  hid_t* type)
{
    *type = -1;
    *g = group(h, obj, 0);
    return *g < 0 ? -1 : attr_at(h, *g, obj, name, cls, 1, type);
}

static void close_attr(hid_t a, hid_t t, hid_t g)
{
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    if (g >= 0) H5Oclose(g);
}

static void get(h5file* h, const char* obj, const char* name, hid_t type, void* v)
{
    hid_t g, t, a = attr(h, obj, name, H5T_INTEGER, &g, &t);
    if (a >= 0 && H5Aread(a, type, v) < 0) h5_fail(h, "cannot read attribute %s", attr_path(obj, name).s);
    close_attr(a, t, g);
}

long h5_get_long(h5file* h, const char* obj, const char* name)
{
    int64_t x = 0;
    get(h, obj, name, H5T_NATIVE_INT64, &x);
    return (long)x;
}

uint64_t h5_get_u64(h5file* h, const char* obj, const char* name)
{
    uint64_t x = 0;
    get(h, obj, name, H5T_NATIVE_UINT64, &x);
    return x;
}

// A variable-length string attribute (h5py's default for str) into out.
static void get_vlen_str(h5file* h, hid_t a, hid_t ft, const char* obj, const char* name,
                         char* out, size_t len)
{
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft)); // HDF5 converts no character set into another
    char* s = NULL;
    if (H5Aread(a, mt, &s) < 0 || !s) h5_fail(h, "cannot read attribute %s", attr_path(obj, name).s);
    else if (strlen(s) >= len)
        h5_fail(h, "attribute %s is longer than %zu characters", attr_path(obj, name).s, len - 1);
    else memcpy(out, s, strlen(s) + 1);
    if (s) H5free_memory(s);
    H5Tclose(mt);
}

void h5_get_str(h5file* h, const char* obj, const char* name, char* out, size_t len)
{
    out[0] = '\0';
    hid_t g, ft, a = attr(h, obj, name, H5T_STRING, &g, &ft);
    size_t n = ft < 0 ? 0 : H5Tget_size(ft);
    if (a >= 0 && H5Tis_variable_str(ft) > 0) {
        get_vlen_str(h, a, ft, obj, name, out, len);
    } else if (a >= 0 && n >= len) {
        h5_fail(h, "attribute %s is longer than %zu characters", attr_path(obj, name).s, len - 1);
    } else if (a >= 0) {
        // One byte more than the stored width, null-terminated: a null-padded string that
        // fills its width (h5py, numpy bytes) keeps its last character.
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        H5Tset_cset(mt, H5Tget_cset(ft));
        if (H5Aread(a, mt, out) < 0) h5_fail(h, "cannot read attribute %s", attr_path(obj, name).s);
        out[n] = '\0';
        H5Tclose(mt);
    }
    close_attr(a, ft, g);
}

int h5_get_strs(h5file* h, const char* obj, const char* name, char*** out)
{
    *out = NULL;
    hid_t g = group(h, obj, 0);
    if (g < 0) return -1;
    if (H5Aexists(g, name) <= 0) {
        H5Oclose(g);
        return h5_fail(h, "no attribute %s", attr_path(obj, name).s);
    }
    hid_t a = H5Aopen(g, name, H5P_DEFAULT);
    hid_t ft = a < 0 ? -1 : H5Aget_type(a);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    hid_t mt = H5Tcopy(H5T_C_S1);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    int ok = ft >= 0 && n > 0 && n < 1 << 24 && mt >= 0 && H5Tget_class(ft) == H5T_STRING &&
             H5Tis_variable_str(ft) == 0;
    // Read one byte wider than stored, null-terminated: a null-padded string that fills its
    // width (h5py, numpy bytes) keeps its last character.
    size_t width = ok ? H5Tget_size(ft) + 1 : 0;
    char* buf = ok ? calloc((size_t)n, width) : NULL;
    ok = buf && H5Tset_size(mt, width) >= 0 && H5Tset_strpad(mt, H5T_STR_NULLTERM) >= 0 &&
         H5Aread(a, mt, buf) >= 0;
    char** v = ok ? calloc((size_t)n, sizeof *v) : NULL;
    for (hssize_t i = 0; v && i < n && ok; i++)
        ok = (v[i] = strndup(buf + i * width, width - 1)) != NULL;
    for (hssize_t i = 0; v && !ok && i < n; i++) free(v[i]);
    if (!ok) free(v);
    free(buf);
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    H5Oclose(g);
    if (!ok) return h5_fail(h, "cannot read attribute %s as fixed-length strings", attr_path(obj, name).s);
    *out = v;
    return (int)n;
}

// ------------------------------------------------------------------------------------------------
// Datasets

// File and memory selections of a piece; spaces closed by the caller.
static void select_piece(const h5_piece* pc, hid_t file, hid_t* mem)
{
    hsize_t mdims[2] = {(hsize_t)(pc->nrows > 0 ? pc->nrows : 1), (hsize_t)pc->ld};
    *mem = H5Screate_simple(pc->rank == 1 ? 1 : 2, mdims, NULL);
    if (pc->nrows == 0 || pc->ncols == 0) {
        H5Sselect_none(file);
        H5Sselect_none(*mem);
        return;
    }
    hsize_t fstart[2] = {(hsize_t)pc->row0, (hsize_t)pc->col0};
    hsize_t count[2] = {(hsize_t)pc->nrows, (hsize_t)pc->ncols}, zero[2] = {0, 0};
    H5Sselect_hyperslab(file, H5S_SELECT_SET, fstart, NULL, count, NULL);
    H5Sselect_hyperslab(*mem, H5S_SELECT_SET, zero, NULL, count, NULL);
}

static hid_t create_float(h5file* h, const char* name, hid_t fs, hid_t lcpl)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (h->place) H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t ds = H5Dcreate2(h->f, name, H5T_IEEE_F32LE, fs, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    return ds;
}

// Rows [row0, row0 + nrows) x cols [col0, col0 + ncols) of dataset ds (cols columns), at p with
// row stride ld, to h->place: one run per row, or one for them all when they are whole rows.
static void place_rows(h5file* h, hid_t ds, const char* name, int cols, int row0, int nrows,
                       int col0, int ncols, int ld, const real* p)
{
    const haddr_t base = H5Dget_offset(ds);
    if (base == HADDR_UNDEF) h5_fail(h, "no storage allocated for dataset %s", name);
    if (base == HADDR_UNDEF || !nrows || !ncols) return;
    const int step = ncols == cols && ld == cols ? nrows : 1;
    for (int r = 0; r < nrows; r += step)
        h->place(h->place_arg, base + ((uint64_t)(row0 + r) * (uint64_t)cols + (uint64_t)col0) * sizeof(real),
                 p + (size_t)r * ld, (size_t)step * (size_t)ncols * sizeof(real));
}

void h5_write_piece(h5file* h, const char* name, const h5_piece* pc, const real* p)
{
    if (h->f < 0) return;
    hsize_t dims[2] = {(hsize_t)pc->rows, (hsize_t)pc->cols};
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t fs = H5Screate_simple(pc->rank, dims, NULL);
    hid_t ds = create_float(h, name, fs, lcpl);
    hid_t ms;
    select_piece(pc, fs, &ms);
    if (ds >= 0 && h->place)
        place_rows(h, ds, name, pc->cols, pc->row0, pc->nrows, pc->col0, pc->ncols, pc->ld, p);
    else if (ds < 0 || H5Dwrite(ds, REAL_H5, ms, fs, h->dxpl, p) < 0)
        h5_fail(h, "cannot write dataset %s (disk full?)", name);
    h5_sum* s = add_sum(h, name);
    if (s) digest_rows(s->part, pc, p, 0, pc->nrows);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Pclose(lcpl);
}

static void shape_text(char* buf, size_t len, int rank, const hsize_t* d)
{
    if (rank == 1) snprintf(buf, len, "%llu", (unsigned long long)d[0]);
    else snprintf(buf, len, "%llu x %llu", (unsigned long long)d[0], (unsigned long long)d[1]);
}

// Reads the stored digest of dataset ds into s.
static void read_digest(h5file* h, hid_t ds, h5_sum* s)
{
    if (H5Aexists(ds, DIGEST) <= 0) return;
    hid_t t, a = attr_at(h, ds, s->name, DIGEST, H5T_INTEGER, 2, &t);
    if (a >= 0 && H5Aread(a, H5T_NATIVE_UINT64, s->want) < 0)
        h5_fail(h, "cannot read attribute %s", attr_path(s->name, DIGEST).s);
    s->stored = a >= 0;
    close_attr(a, t, -1);
}

// Opens dataset name and checks it is float with rank 1 or 2; its dims go to have. -1 after
// recording a failure.
static hid_t open_float(h5file* h, const char* name, int* nd, hsize_t have[2])
{
    hid_t ds = H5Dopen2(h->f, name, H5P_DEFAULT);
    hid_t fs = ds < 0 ? -1 : H5Dget_space(ds);
    hid_t t = ds < 0 ? -1 : H5Dget_type(ds);
    *nd = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
    have[0] = have[1] = 1;
    if (*nd >= 1 && *nd <= 2) H5Sget_simple_extent_dims(fs, have, NULL);
    int cls = t < 0 ? -1 : H5Tget_class(t);
    // fnn writes contiguous, unfiltered data: a dataset that stores fewer bytes claims a shape
    // it does not hold (and would be read as fill values, of any size).
    double need = (double)have[0] * (double)have[1] * (t < 0 ? 0 : (double)H5Tget_size(t));
    if (t >= 0) H5Tclose(t);
    if (fs >= 0) H5Sclose(fs);
    if (*nd < 0 || cls < 0) h5_fail(h, "cannot open dataset %s (corrupt file?)", name);
    else if (cls != H5T_FLOAT) h5_fail(h, "dataset %s is not a float dataset", name);
    else if ((double)H5Dget_storage_size(ds) < need)
        h5_fail(h, "dataset %s stores fewer bytes than its shape needs (damaged file?)", name);
    if (!h->failed) return ds;
    if (ds >= 0) H5Dclose(ds);
    return -1;
}

// Dataset name, checked to be float of logical shape rows x cols (rank 1: a vector of rows),
// and its digest entry; -1 after recording a failure.
static hid_t open_shaped(h5file* h, const char* name, int rank, int rows, int cols, h5_sum** s)
{
    *s = NULL;
    if (h->f < 0) return -1;
    if (!h5_exists(h, name)) {
        h5_fail(h, "no dataset %s: written for another model?", name);
        return -1;
    }
    int nd;
    hsize_t have[2], want[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t ds = open_float(h, name, &nd, have);
    if (ds < 0) return -1;
    *s = add_sum(h, name);
    const int shaped = nd == rank && have[0] == want[0] && (nd == 1 || have[1] == want[1]);
    if (!shaped) {
        char a[64], b[64];
        shape_text(a, sizeof a, nd, have);
        shape_text(b, sizeof b, rank, want);
        h5_fail(h, "%s is %s, this model needs %s", name, nd > 2 ? "not a matrix" : a, b);
    }
    if (*s && shaped) return ds;
    H5Dclose(ds);
    return -1;
}

void h5_read_piece(h5file* h, const char* name, const h5_piece* pc, real* p)
{
    h5_sum* s;
    hid_t ds = open_shaped(h, name, pc->rank, pc->rows, pc->cols, &s);
    if (ds < 0) return;
    hid_t fs = H5Dget_space(ds), ms;
    select_piece(pc, fs, &ms);
    if (H5Dread(ds, REAL_H5, ms, fs, h->dxpl, p) < 0)
        h5_fail(h, "cannot read dataset %s (truncated or corrupt file?)", name);
    int part = pc->parts > 0 ? pc->part : 0, parts = pc->parts > 0 ? pc->parts : 1;
    digest_rows(s->part, pc, p, (int)((long)pc->nrows * part / parts),
                (int)((long)pc->nrows * (part + 1) / parts));
    read_digest(h, ds, s);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
}

// File and memory selections of n rectangles (h5_rect); the memory is one vector from base.
static void select_rects(const h5_rect* r, int n, hid_t file, hid_t* mem)
{
    hsize_t len = 1;
    for (int i = 0; i < n; i++) {
        hsize_t end = r[i].mem + (hsize_t)(r[i].nrows - 1) * r[i].ld + r[i].ncols;
        if (r[i].nrows && r[i].ncols && end > len) len = end;
    }
    *mem = H5Screate_simple(1, &len, NULL);
    H5Sselect_none(file);
    H5Sselect_none(*mem);
    for (int i = 0; i < n; i++) {
        if (!r[i].nrows || !r[i].ncols) continue;
        hsize_t fstart[2] = {(hsize_t)r[i].row0, (hsize_t)r[i].col0};
        hsize_t fcount[2] = {(hsize_t)r[i].nrows, (hsize_t)r[i].ncols};
        hsize_t mstart = r[i].mem, stride = (hsize_t)r[i].ld, count = (hsize_t)r[i].nrows,
                block = (hsize_t)r[i].ncols;
        H5Sselect_hyperslab(file, H5S_SELECT_OR, fstart, NULL, fcount, NULL);
        H5Sselect_hyperslab(*mem, H5S_SELECT_OR, &mstart, &stride, &count, &block);
    }
}

// Digest parts of the n rectangles at base in a dataset of cols columns.
static void digest_rects(uint64_t s[3], const h5_rect* r, int n, const real* base, int cols)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < r[i].nrows; j++)
            digest_run(s, base + r[i].mem + (size_t)j * r[i].ld, (size_t)r[i].ncols,
                       (uint64_t)(r[i].row0 + j) * (uint64_t)cols + (uint64_t)r[i].col0);
}

void h5_write_rects(h5file* h, const char* name, int rank, int rows, int cols, const h5_rect* r,
                    int n, const real* base)
{
    if (h->f < 0) return;
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t fs = H5Screate_simple(rank, dims, NULL);
    hid_t ds = create_float(h, name, fs, lcpl);
    hid_t ms;
    select_rects(r, n, fs, &ms);
    for (int i = 0; ds >= 0 && h->place && i < n; i++)
        place_rows(h, ds, name, cols, r[i].row0, r[i].nrows, r[i].col0, r[i].ncols, r[i].ld, base + r[i].mem);
    if (ds < 0 || (!h->place && H5Dwrite(ds, REAL_H5, ms, fs, h->dxpl, base) < 0))
        h5_fail(h, "cannot write dataset %s (disk full?)", name);
    h5_sum* s = add_sum(h, name);
    if (s) digest_rects(s->part, r, n, base, cols);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Pclose(lcpl);
}

void h5_read_rects(h5file* h, const char* name, int rank, int rows, int cols, const h5_rect* r,
                   int n, real* base, int digest)
{
    h5_sum* s;
    hid_t ds = open_shaped(h, name, rank, rows, cols, &s);
    if (ds < 0) return;
    hid_t fs = H5Dget_space(ds), ms;
    select_rects(r, n, fs, &ms);
    if (H5Dread(ds, REAL_H5, ms, fs, h->dxpl, base) < 0)
        h5_fail(h, "cannot read dataset %s (truncated or corrupt file?)", name);
    if (digest) digest_rects(s->part, r, n, base, cols);
    read_digest(h, ds, s);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
}

// ------------------------------------------------------------------------------------------------
// The whole file

typedef struct name_list {
    char** v;
    int n, cap, oom;
} name_list;

static herr_t collect(hid_t obj, const char* name, const H5O_info_t* info, void* data)
{
    (void)obj;
    name_list* l = data;
    if (info->type != H5O_TYPE_DATASET) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char** v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return l->oom = 1, -1;
        l->v = v, l->cap = cap;
    }
    size_t len = strlen(name) + 2;
    if (!(l->v[l->n] = malloc(len))) return l->oom = 1, -1;
    snprintf(l->v[l->n++], len, "/%s", name);
    return 0;
}

// Rows [r0, r1) of dataset ds (nd dims, have) in blocks of at most 4 Mi elements, into the
// digest s.
static void read_rows(h5file* h, hid_t ds, const char* name, int nd, const hsize_t have[2],
                      hsize_t r0, hsize_t r1, h5_sum* s)
{
    hsize_t cols = nd == 2 ? have[1] : 1, step = cols ? (4u << 20) / cols : 0;
    if (step == 0) step = 1;
    real* buf = r1 > r0 && cols ? malloc((size_t)(r1 - r0 < step ? r1 - r0 : step) * cols * sizeof *buf) : NULL;
    if (r1 > r0 && cols && !buf) h5_fail(h, "out of memory reading %s", name);
    hid_t fs = H5Dget_space(ds);
    for (hsize_t r = r0; buf && r < r1 && !h->failed; r += step) {
        hsize_t n = r1 - r < step ? r1 - r : step;
        h5_piece pc = {.rank = nd, .rows = (int)have[0], .cols = (int)cols, .row0 = (int)r,
                       .nrows = (int)n, .col0 = 0, .ncols = (int)cols, .ld = (int)cols};
        hid_t ms;
        select_piece(&pc, fs, &ms);
        if (H5Dread(ds, REAL_H5, ms, fs, h->dxpl, buf) < 0)
            h5_fail(h, "cannot read dataset %s (truncated or corrupt file?)", name);
        else digest_rows(s->part, &pc, buf, 0, (int)n);
        H5Sclose(ms);
    }
    H5Sclose(fs);
    free(buf);
}

void h5_read_all(h5file* h)
{
    if (h->f < 0) return;
    name_list l = {0};
    if (H5Ovisit2(h->f, H5_INDEX_NAME, H5_ITER_INC, collect, &l, H5O_INFO_BASIC) < 0)
        h5_fail(h, l.oom ? "out of memory listing the datasets" : "cannot list the datasets (corrupt file?)");
    int rank, size;
    MPI_Comm_rank(h->comm, &rank);
    MPI_Comm_size(h->comm, &size);
    for (int i = 0; i < l.n; i++) {
        int nd;
        hsize_t have[2];
        hid_t ds = open_float(h, l.v[i], &nd, have);
        h5_sum* s = ds < 0 ? NULL : add_sum(h, l.v[i]);
        if (s && (nd < 1 || nd > 2 || have[0] > INT32_MAX || have[1] > INT32_MAX))
            h5_fail(h, "dataset %s is not a vector or a matrix of fewer than 2^31 rows", l.v[i]);
        else if (s) {
            // Each rank a contiguous share of the rows; the shares make the whole dataset.
            read_rows(h, ds, l.v[i], nd, have, have[0] * rank / size, have[0] * (rank + 1) / size, s);
            read_digest(h, ds, s);
        }
        if (ds >= 0) H5Dclose(ds);
    }
    for (int i = 0; i < l.n; i++) free(l.v[i]);
    free(l.v);
}
