// The arrays of fnn prepare's files (io/h5.h): whole datasets of bytes, integers or floats, and
// the row ranges that the loader reads one window at a time and prepare writes one block at a
// time, so that neither holds a whole corpus. Unlike a checkpoint's tensors they carry no digest:
// prepare's output is the user's to regenerate, and its reader checks what they hold.
//
// Reading rows: a dataset stored contiguously and exactly as its memory type (what prepare
// writes) is read with pread at its file offset, every other one through an HDF5 hyperslab.
// pread rather than HDF5 per window: a window is a few hundred bytes, and HDF5's per-call cost
// (selections, sieve buffer) is the larger part of such a read; rather than mmap: pages a
// process maps count in its resident memory (VmHWM) as it touches them, while pread's stay in
// the kernel's page cache, which the ranks of a node share either way. A read that ends early
// is a file truncated while in use, an error rather than zeros (HDF5's sec2 driver fills a read
// past the end of the file with zeros).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "io/h5.h"


// The file type each element kind is stored as, and the memory type it is read into.
static hid_t file_type(h5_elem e)
{
    return e == ELEM_U8 ? H5T_STD_U8LE : e == ELEM_I32 ? H5T_STD_I32LE : H5T_IEEE_F32LE;
}

static hid_t mem_type(h5_elem e)
{
    return e == ELEM_U8 ? H5T_NATIVE_UINT8 : e == ELEM_I32 ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT;
}

// Whether HDF5 converts type t into e's memory type without saturating any value.
static int holds(hid_t t, h5_elem e)
{
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if (e == ELEM_F32) return cls == H5T_FLOAT;
    if (cls != H5T_INTEGER) return 0;
    if (e == ELEM_U8) return size == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    return size < 4 || (size == 4 && H5Tget_sign(t) == H5T_SGN_2);
}

int h5_array_shape(h5file* h, const char* name, int rank, h5_elem e, uint64_t dims[2],
                   uint64_t* stored)
{
    static const char* const needs[] = {"an unsigned 8-bit integer dataset",
                                        "a 32-bit (or narrower) integer dataset", "a float dataset"};
    if (h->f < 0) return -1;
    if (!h5_exists(h, name)) return h5_fail(h, "no dataset %s", name);
    hid_t ds = H5Dopen2(h->f, name, H5P_DEFAULT);
    hid_t sp = ds < 0 ? -1 : H5Dget_space(ds);
    int nd = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    hsize_t d[2] = {1, 1};
    if (nd == rank) nd = H5Sget_simple_extent_dims(sp, d, NULL);
    if (sp >= 0) H5Sclose(sp);
    hid_t t = nd == rank ? H5Dget_type(ds) : -1;
    int st = 0;
    if (nd < 0) st = h5_fail(h, "cannot open dataset %s (truncated or corrupt file?)", name);
    else if (nd != rank) st = h5_fail(h, "dataset %s has %d dimensions, expected %d", name, nd, rank);
    else if (t < 0 || !holds(t, e)) st = h5_fail(h, "dataset %s must be %s", name, needs[e]);
    if (!st) {
        dims[0] = d[0], dims[1] = d[1];
        *stored = H5Dget_storage_size(ds);
    }
    if (t >= 0) H5Tclose(t);
    if (ds >= 0) H5Dclose(ds);
    return st;
}

void h5_array_read(h5file* h, const char* name, h5_elem e, void* out)
{
    if (h->f < 0) return;
    hid_t ds = H5Dopen2(h->f, name, H5P_DEFAULT);
    if (ds < 0 || H5Dread(ds, mem_type(e), H5S_ALL, H5S_ALL, h->dxpl, out) < 0)
        h5_fail(h, "cannot read dataset %s (truncated or corrupt file?)", name);
    if (ds >= 0) H5Dclose(ds);
}

void h5_array_write(h5file* h, const char* name, h5_elem e, int rank, uint64_t rows,
                    uint64_t cols, const void* data)
{
    if (h->f < 0) return;
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = sp < 0 ? -1 : H5Dcreate2(h->f, name, file_type(e), sp, H5P_DEFAULT, H5P_DEFAULT,
                                        H5P_DEFAULT);
    int ok = ds >= 0 && (rows * cols == 0 ||
                         H5Dwrite(ds, mem_type(e), H5S_ALL, H5S_ALL, h->dxpl, data) >= 0);
    if (ds >= 0 && H5Dclose(ds) < 0) ok = 0;
    if (sp >= 0) H5Sclose(sp);
    if (!ok) h5_fail(h, "cannot write dataset %s (disk full?)", name);
}


static size_t elem_size(h5_elem e)
{
    return e == ELEM_U8 ? 1 : 4;
}

static void rows_reset(h5_rows* r)
{
    *r = (h5_rows){.ds = -1, .fd = -1};
}

// The rows [row0, row0 + n) x all columns of r, selected in a new file dataspace, and a memory
// dataspace of their shape.
static hid_t select_rows(const h5_rows* r, uint64_t row0, uint64_t n, hid_t* mem)
{
    hsize_t start[2] = {row0, 0}, count[2] = {n, r->cols};
    hid_t fs = H5Dget_space(r->ds);
    if (fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
        H5Sclose(fs);
        fs = -1;
    }
    *mem = fs < 0 ? -1 : H5Screate_simple(r->rank, count, NULL);
    return fs;
}

int h5_rows_open(h5file* h, const char* name, int rank, h5_elem e, h5_rows* r)
{
    rows_reset(r);
    uint64_t dims[2], stored;
    if (h5_array_shape(h, name, rank, e, dims, &stored)) return -1;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->rows = dims[0], r->cols = dims[1], r->rank = rank, r->e = e, r->stored = stored;
    r->ds = H5Dopen2(h->f, name, H5P_DEFAULT);
    if (r->ds < 0) return h5_fail(h, "cannot open dataset %s (truncated or corrupt file?)", name);
    hid_t t = H5Dget_type(r->ds);
    haddr_t off = H5Dget_offset(r->ds);
    int direct = t >= 0 && H5Tequal(t, mem_type(e)) > 0 && off != HADDR_UNDEF;
    if (t >= 0) H5Tclose(t);
    if (direct) {
        r->fd = open(h->path, O_RDONLY | O_CLOEXEC);
        r->offset = off;
    }
    return 0;
}

// The direct path: nbytes at byte `at` of the raw data, all of them or a failure.
static int pread_all(h5file* h, const h5_rows* r, uint64_t at, size_t nbytes, char* out)
{
    while (nbytes) {
        ssize_t got = pread(r->fd, out, nbytes, (off_t)(r->offset + at));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return h5_fail(h, "cannot read dataset %s (%s)", r->name, strerror(errno));
        if (got == 0)
            return h5_fail(h, "dataset %s: byte %llu of its data lies past the end of the file "
                           "(truncated while in use?)", r->name, (unsigned long long)at);
        out += got, at += (uint64_t)got, nbytes -= (size_t)got;
    }
    return 0;
}

int h5_rows_read(h5file* h, const h5_rows* r, uint64_t row0, uint64_t n, void* out)
{
    if (row0 > r->rows || n > r->rows - row0)
        return h5_fail(h, "dataset %s: rows %llu..%llu asked of %llu", r->name,
                       (unsigned long long)row0, (unsigned long long)(row0 + n),
                       (unsigned long long)r->rows);
    if (!n) return 0;
    const size_t row_bytes = r->cols * elem_size(r->e);
    if (r->fd >= 0) return pread_all(h, r, row0 * row_bytes, n * row_bytes, out);
    hid_t mem, fs = select_rows(r, row0, n, &mem);
    int ok = fs >= 0 && mem >= 0 && H5Dread(r->ds, mem_type(r->e), mem, fs, H5P_DEFAULT, out) >= 0;
    if (mem >= 0) H5Sclose(mem);
    if (fs >= 0) H5Sclose(fs);
    return ok ? 0 : h5_fail(h, "cannot read dataset %s (truncated or corrupt file?)", r->name);
}

void h5_rows_close(h5_rows* r)
{
    if (r->fd >= 0) close(r->fd);
    if (r->ds >= 0) H5Dclose(r->ds);
    rows_reset(r);
}

int h5_rows_create(h5file* h, const char* name, h5_elem e, int rank, uint64_t rows, uint64_t cols,
                   h5_rows* r)
{
    rows_reset(r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->rows = rows, r->cols = cols, r->rank = rank, r->e = e;
    if (h->f < 0) return -1;
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    r->ds = sp < 0 ? -1 : H5Dcreate2(h->f, name, file_type(e), sp, H5P_DEFAULT, H5P_DEFAULT,
                                     H5P_DEFAULT);
    if (sp >= 0) H5Sclose(sp);
    return r->ds < 0 ? h5_fail(h, "cannot create dataset %s (disk full?)", name) : 0;
}

void h5_rows_write(h5file* h, const h5_rows* r, uint64_t row0, uint64_t n, const void* data)
{
    if (h->failed || !n) return;
    hid_t mem, fs = select_rows(r, row0, n, &mem);
    int ok = row0 <= r->rows && n <= r->rows - row0 && fs >= 0 && mem >= 0 &&
             H5Dwrite(r->ds, mem_type(r->e), mem, fs, h->dxpl, data) >= 0;
    if (mem >= 0) H5Sclose(mem);
    if (fs >= 0) H5Sclose(fs);
    if (!ok) h5_fail(h, "cannot write dataset %s (disk full?)", r->name);
}
