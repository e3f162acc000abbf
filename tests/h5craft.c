// Damages HDF5 files on purpose, for tests/e2e_hostile.sh. Serial HDF5, one edit per call. It
// calls the HDF5 library itself, not io/h5.h (fnn's only way in elsewhere): it must write what
// fnn never would.
//
//   flip FILE DSET I            flips one bit of element I's raw bytes in place (contiguous data)
//   set FILE DSET I V           element I = V (strtod: "nan", "inf", 3e38), its fnn_digest (if
//                               any) recomputed to match; I = -1: every element
//   swap FILE DSET I J          elements I and J exchanged, the digest left as it was
//   retype FILE DSET TYPE [NEG] same values stored as TYPE (u8 i8 i32 i64 f32 f64), element 0
//                               set to NEG first when given; the digest (if any) recomputed
//   huge FILE DSET N [TYPE]     replaced by a vector (uint8, or TYPE) of N elements whose
//                               storage is never written (any size, no bytes in the file)
//   shrink FILE N               a checkpoint's vocabulary and outputs cut from 256 to N: every
//                               dataset dimension of 256 becomes N, /config/vocab and outputs = N
//   attr-ints OBJ ...           see usage(): attributes replaced by arrays, strings of several
//   attr-strs, attr-nullpad,    elements, h5py-style null-padded and variable-length strings, a
//   attr-vlen, attr-long,       scalar integer, a float where an integer belongs
//   attr-float
//
// The digest here is computed from its definition in io/h5.h, independently of io/h5.c.
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char* what)
{
    fprintf(stderr, "h5craft: %s\n", what);
    exit(1);
}

static void check(herr_t r, const char* what)
{
    if (r < 0) die(what);
}

// A dataset's elements as doubles, its rank and dims.
static double* load(hid_t ds, int* nd, hsize_t dims[2], size_t* n)
{
    hid_t sp = H5Dget_space(ds);
    dims[0] = dims[1] = 1;
    *nd = H5Sget_simple_extent_ndims(sp);
    if (*nd < 1 || *nd > 2) die("dataset is not rank 1 or 2");
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    *n = (size_t)dims[0] * dims[1];
    double* v = malloc((*n ? *n : 1) * sizeof *v);
    if (!v) die("out of memory");
    if (*n) check(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), "read");
    return v;
}

// fnn_digest of float32 values: a = sum u_i, b = sum (i + 1) u_i modulo 2^64.
static void set_digest(hid_t ds, const double* v, size_t n)
{
    if (H5Aexists(ds, "fnn_digest") <= 0) return;
    uint64_t d[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        float f = (float)v[i];
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        d[0] += u;
        d[1] += (uint64_t)(i + 1) * u;
    }
    hid_t a = H5Aopen(ds, "fnn_digest", H5P_DEFAULT);
    check(H5Awrite(a, H5T_NATIVE_UINT64, d), "write digest");
    H5Aclose(a);
}

static hid_t type_named(const char* t)
{
    const char* names[] = {"u8", "i8", "i32", "i64", "f32", "f64"};
    hid_t types[] = {H5T_STD_U8LE, H5T_STD_I8LE, H5T_STD_I32LE, H5T_STD_I64LE, H5T_IEEE_F32LE,
                     H5T_IEEE_F64LE};
    for (int i = 0; i < 6; i++)
        if (!strcmp(t, names[i])) return types[i];
    die("unknown type");
    return -1;
}

// Replaces dataset name by one of type t and dims holding v (digest attribute kept, recomputed).
static void rewrite(hid_t f, const char* name, hid_t t, int nd, const hsize_t dims[2],
                    const double* v, size_t n, int had_digest)
{
    check(H5Ldelete(f, name, H5P_DEFAULT), "delete dataset");
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0) die("create dataset");
    if (n) check(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), "write");
    if (had_digest) {
        hsize_t two = 2;
        hid_t as = H5Screate_simple(1, &two, NULL);
        H5Aclose(H5Acreate2(ds, "fnn_digest", H5T_STD_U64LE, as, H5P_DEFAULT, H5P_DEFAULT));
        H5Sclose(as);
        set_digest(ds, v, n);
    }
    H5Sclose(sp);
    H5Dclose(ds);
}

static void flip(const char* path, const char* name, long i)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = f < 0 ? -1 : H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) die("cannot open the dataset");
    haddr_t off = H5Dget_offset(ds);
    if (off == HADDR_UNDEF) die("dataset is not contiguous");
    H5Dclose(ds);
    H5Fclose(f);
    FILE* fp = fopen(path, "r+b");
    long at = (long)off + 4 * i + 1; // a mantissa byte: the value stays finite
    int c;
    if (!fp || fseek(fp, at, SEEK_SET) || (c = fgetc(fp)) == EOF || fseek(fp, at, SEEK_SET) ||
        fputc(c ^ 0x10, fp) == EOF || fclose(fp))
        die("cannot flip the byte");
}

static void set_at(hid_t f, const char* name, long i, double x)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) die("cannot open the dataset");
    int nd;
    hsize_t dims[2];
    size_t n;
    double* v = load(ds, &nd, dims, &n);
    if (i >= 0 && (size_t)i >= n) die("index out of range");
    for (size_t k = 0; k < n; k++)
        if (i < 0 || k == (size_t)i) v[k] = x;
    check(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), "write");
    set_digest(ds, v, n);
    H5Dclose(ds);
    free(v);
}

static void swap(hid_t f, const char* name, long i, long j)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) die("cannot open the dataset");
    int nd;
    hsize_t dims[2];
    size_t n;
    double* v = load(ds, &nd, dims, &n);
    if (i < 0 || j < 0 || (size_t)i >= n || (size_t)j >= n || v[i] == v[j]) die("bad indices");
    double t = v[i];
    v[i] = v[j], v[j] = t;
    check(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), "write");
    H5Dclose(ds);
    free(v);
}

static void retype(hid_t f, const char* name, const char* t, const char* neg)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) die("cannot open the dataset");
    int nd, had = H5Aexists(ds, "fnn_digest") > 0;
    hsize_t dims[2];
    size_t n;
    double* v = load(ds, &nd, dims, &n);
    H5Dclose(ds);
    if (neg && n) v[0] = atof(neg);
    rewrite(f, name, type_named(t), nd, dims, v, n, had);
    free(v);
}

static herr_t list(hid_t o, const char* name, const H5O_info_t* info, void* data)
{
    (void)o;
    char (*names)[128] = data;
    int k = 0;
    while (names[k][0]) k++;
    if (info->type == H5O_TYPE_DATASET && k < 255) snprintf(names[k], 128, "/%s", name);
    return 0;
}

static void set_long(hid_t f, const char* obj, const char* name, long v);

static void shrink(hid_t f, int N)
{
    static char names[256][128];
    check(H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, list, names, H5O_INFO_BASIC), "visit");
    for (int k = 0; names[k][0]; k++) {
        hid_t ds = H5Dopen2(f, names[k], H5P_DEFAULT);
        int nd, had = H5Aexists(ds, "fnn_digest") > 0;
        hsize_t dims[2], nd2[2];
        size_t n;
        double* v = load(ds, &nd, dims, &n);
        H5Dclose(ds);
        for (int d = 0; d < 2; d++) nd2[d] = dims[d] == 256 ? (hsize_t)N : dims[d];
        if (nd2[0] == dims[0] && nd2[1] == dims[1]) {
            free(v);
            continue;
        }
        size_t m = 0;
        for (hsize_t r = 0; r < nd2[0]; r++)
            for (hsize_t c = 0; c < nd2[1]; c++) v[m++] = v[r * dims[1] + c];
        rewrite(f, names[k], H5T_IEEE_F32LE, nd, nd2, v, m, had);
        free(v);
    }
    set_long(f, "/config", "vocab", N);
    set_long(f, "/config", "outputs", N);
}

// Attribute obj/name (deleted first if present) of type t over space sp, holding v.
static void put_attr(hid_t f, const char* obj, const char* name, hid_t t, hid_t sp, const void* v)
{
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    if (o < 0) die("cannot open the object");
    if (H5Aexists(o, name) > 0) check(H5Adelete(o, name), "delete attribute");
    hid_t a = H5Acreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) die("create attribute");
    check(H5Awrite(a, t, v), "write attribute");
    H5Aclose(a);
    H5Oclose(o);
    H5Sclose(sp);
}

static void set_long(hid_t f, const char* obj, const char* name, long v)
{
    int64_t x = v;
    put_attr(f, obj, name, H5T_NATIVE_INT64, H5Screate(H5S_SCALAR), &x);
}

static void usage(void)
{
    die("usage: h5craft flip FILE DSET I | set FILE DSET I V | swap FILE DSET I J | retype FILE DSET TYPE [NEG] | huge FILE DSET N [TYPE] | shrink FILE N |\n"
        "  attr-ints FILE OBJ NAME N | attr-strs FILE OBJ NAME | attr-nullpad FILE OBJ NAME VALUE |\n"
        "  attr-vlen FILE OBJ NAME VALUE | attr-long FILE OBJ NAME V | attr-float FILE OBJ NAME");
}

int main(int argc, char** argv)
{
    if (argc < 4) usage();
    const char* cmd = argv[1];
    if (!strcmp(cmd, "flip")) {
        if (argc != 5) usage();
        flip(argv[2], argv[3], atol(argv[4]));
        return 0;
    }
    hid_t f = H5Fopen(argv[2], H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) die("cannot open the file");
    if (!strcmp(cmd, "set") && argc == 6) {
        set_at(f, argv[3], atol(argv[4]), strtod(argv[5], NULL));
    } else if (!strcmp(cmd, "swap") && argc == 6) {
        swap(f, argv[3], atol(argv[4]), atol(argv[5]));
    } else if (!strcmp(cmd, "retype") && (argc == 5 || argc == 6)) {
        retype(f, argv[3], argv[4], argc == 6 ? argv[5] : NULL);
    } else if (!strcmp(cmd, "huge") && (argc == 5 || argc == 6)) {
        hsize_t n = (hsize_t)atoll(argv[4]);
        check(H5Ldelete(f, argv[3], H5P_DEFAULT), "delete dataset");
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t ds = H5Dcreate2(f, argv[3], argc == 6 ? type_named(argv[5]) : H5T_STD_U8LE, sp,
                              H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0) die("create dataset");
        H5Dclose(ds);
        H5Sclose(sp);
    } else if (!strcmp(cmd, "shrink") && argc == 4) {
        shrink(f, atoi(argv[3]));
    } else if (!strcmp(cmd, "attr-ints") && argc == 6) {
        hsize_t n = (hsize_t)atol(argv[5]);
        int64_t* v = calloc(n, sizeof *v);
        for (hsize_t i = 0; v && i < n; i++) v[i] = 4;
        if (!v) die("out of memory");
        put_attr(f, argv[3], argv[4], H5T_NATIVE_INT64, H5Screate_simple(1, &n, NULL), v);
        free(v);
    } else if (!strcmp(cmd, "attr-strs") && argc == 5) {
        hsize_t n = 3;
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 8);
        put_attr(f, argv[3], argv[4], t, H5Screate_simple(1, &n, NULL), "tanh\0\0\0\0relu\0\0\0\0sigmoid");
        H5Tclose(t);
    } else if (!strcmp(cmd, "attr-nullpad") && argc == 6) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(argv[5]));
        H5Tset_strpad(t, H5T_STR_NULLPAD);
        put_attr(f, argv[3], argv[4], t, H5Screate(H5S_SCALAR), argv[5]);
        H5Tclose(t);
    } else if (!strcmp(cmd, "attr-vlen") && argc == 6) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        const char* s = argv[5];
        put_attr(f, argv[3], argv[4], t, H5Screate(H5S_SCALAR), &s);
        H5Tclose(t);
    } else if (!strcmp(cmd, "attr-long") && argc == 6) {
        set_long(f, argv[3], argv[4], atol(argv[5]));
    } else if (!strcmp(cmd, "attr-float") && argc == 5) {
        double x = 4.5;
        put_attr(f, argv[3], argv[4], H5T_NATIVE_DOUBLE, H5Screate(H5S_SCALAR), &x);
    } else {
        usage();
    }
    check(H5Fclose(f), "close");
    return 0;
}
