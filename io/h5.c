// Parallel HDF5 through the MPI-IO driver (see h5.h). HDF5's own error stack is silenced while
// a file is open: its multi-line dumps would bury the one-line message fnn prints.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "io/h5.h"

int h5_fail(h5file* h, const char* fmt, ...)
{
    if (h->failed) return -1;
    h->failed = 1;
    int n = snprintf(h->err, h->errlen, "%s: ", h->path);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < h->errlen) vsnprintf(h->err + n, h->errlen - n, fmt, ap);
    va_end(ap);
    return -1;
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

static void begin(h5file* h, const char* path, char* err, size_t errlen)
{
    *h = (h5file){.f = -1, .dxpl = -1, .path = path, .err = err, .errlen = errlen};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    h->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (h->dxpl < 0 || H5Pset_dxpl_mpio(h->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
        h5_fail(h, "cannot set up collective MPI-IO transfers");
}

int h5_create(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen)
{
    begin(h, path, err, errlen);
    hid_t fapl = mpio_fapl(comm);
    if (!h->failed) h->f = fapl < 0 ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (h->f < 0) h5_fail(h, "cannot create (does the directory exist and is it writable?)");
    return h->failed;
}

int h5_open(h5file* h, const char* path, MPI_Comm comm, char* err, size_t errlen)
{
    begin(h, path, err, errlen);
    FILE* fp = fopen(path, "rb");
    if (!fp) return h5_fail(h, "cannot open (%s)", strerror(errno));
    fclose(fp);
    if (H5Fis_hdf5(path) <= 0) return h5_fail(h, "not an HDF5 file");
    hid_t fapl = mpio_fapl(comm);
    h->f = fapl < 0 ? -1 : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (h->f < 0) return h5_fail(h, "cannot open as HDF5 (truncated or corrupt file?)");
    return 0;
}

int h5_close(h5file* h)
{
    if (h->f >= 0) {
        // With the MPI-IO driver a global flush is MPI_File_sync: the data is on storage before
        // the caller renames the file into place.
        if (H5Fflush(h->f, H5F_SCOPE_GLOBAL) < 0) h5_fail(h, "cannot flush");
        if (H5Fclose(h->f) < 0) h5_fail(h, "cannot close (disk full?)");
    }
    if (h->dxpl >= 0) H5Pclose(h->dxpl);
    h->f = h->dxpl = -1;
    return h->failed;
}

int h5_exists(h5file* h, const char* name)
{
    if (h->f < 0) return 0;
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

static void put(h5file* h, const char* obj, const char* name, hid_t type, const void* v)
{
    hid_t g = group(h, obj, 1);
    if (g < 0) return;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, v) < 0) h5_fail(h, "cannot write attribute %s/%s", obj, name);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Oclose(g);
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

void h5_put_str(h5file* h, const char* obj, const char* name, const char* v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    put(h, obj, name, t, v);
    H5Tclose(t);
}

// Opens attribute obj/name and checks its class; -1 after recording a failure.
static hid_t attr(h5file* h, const char* obj, const char* name, H5T_class_t cls, hid_t* g)
{
    *g = group(h, obj, 0);
    if (*g < 0) return -1;
    if (H5Aexists(*g, name) <= 0) {
        h5_fail(h, "no attribute %s/%s: not an fnn checkpoint, or a damaged one", obj, name);
        return -1;
    }
    hid_t a = H5Aopen(*g, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a);
    int ok = t >= 0 && H5Tget_class(t) == cls;
    if (t >= 0) H5Tclose(t);
    if (ok) return a;
    if (a >= 0) H5Aclose(a);
    h5_fail(h, "attribute %s/%s is not %s", obj, name, cls == H5T_STRING ? "a string" : "an integer");
    return -1;
}

static void get(h5file* h, const char* obj, const char* name, hid_t type, void* v)
{
    hid_t g, a = attr(h, obj, name, H5T_INTEGER, &g);
    if (a >= 0 && H5Aread(a, type, v) < 0) h5_fail(h, "cannot read attribute %s/%s", obj, name);
    if (a >= 0) H5Aclose(a);
    if (g >= 0) H5Oclose(g);
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

void h5_get_str(h5file* h, const char* obj, const char* name, char* out, size_t len)
{
    out[0] = '\0';
    hid_t g, a = attr(h, obj, name, H5T_STRING, &g);
    hid_t ft = a < 0 ? -1 : H5Aget_type(a);
    size_t n = ft < 0 ? 0 : H5Tget_size(ft);
    if (a >= 0 && (H5Tis_variable_str(ft) != 0 || n >= len)) {
        h5_fail(h, "attribute %s/%s is longer than %zu characters", obj, name, len - 1);
    } else if (a >= 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n);
        if (H5Aread(a, mt, out) < 0) h5_fail(h, "cannot read attribute %s/%s", obj, name);
        out[n] = '\0';
        H5Tclose(mt);
    }
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    if (g >= 0) H5Oclose(g);
}

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

void h5_write_piece(h5file* h, const char* name, const h5_piece* pc, const real* p)
{
    if (h->f < 0) return;
    hsize_t dims[2] = {(hsize_t)pc->rows, (hsize_t)pc->cols};
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t fs = H5Screate_simple(pc->rank, dims, NULL);
    hid_t ds = H5Dcreate2(h->f, name, H5T_IEEE_F32LE, fs, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    hid_t ms;
    select_piece(pc, fs, &ms);
    if (ds < 0 || H5Dwrite(ds, REAL_H5, ms, fs, h->dxpl, p) < 0)
        h5_fail(h, "cannot write dataset %s (disk full?)", name);
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

void h5_read_piece(h5file* h, const char* name, const h5_piece* pc, real* p)
{
    if (h->f < 0) return;
    if (!h5_exists(h, name)) {
        h5_fail(h, "no dataset %s: written for another model?", name);
        return;
    }
    hid_t ds = H5Dopen2(h->f, name, H5P_DEFAULT);
    hid_t fs = ds < 0 ? -1 : H5Dget_space(ds);
    hsize_t have[2] = {0, 0}, want[2] = {(hsize_t)pc->rows, (hsize_t)pc->cols};
    int nd = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
    if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(fs, have, NULL);
    if (nd < 0) {
        h5_fail(h, "cannot open dataset %s (corrupt file?)", name);
    } else if (nd != pc->rank || have[0] != want[0] || (nd == 2 && have[1] != want[1])) {
        char a[64], b[64];
        shape_text(a, sizeof a, nd, have);
        shape_text(b, sizeof b, pc->rank, want);
        h5_fail(h, "%s is %s, this model needs %s", name, nd > 2 ? "not a matrix" : a, b);
    } else {
        hid_t ms;
        select_piece(pc, fs, &ms);
        if (H5Dread(ds, REAL_H5, ms, fs, h->dxpl, p) < 0)
            h5_fail(h, "cannot read dataset %s (truncated or corrupt file?)", name);
        H5Sclose(ms);
    }
    if (fs >= 0) H5Sclose(fs);
    if (ds >= 0) H5Dclose(ds);
}
