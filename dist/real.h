// The scalar type of every layer (the collectives reduce it, HDF5 stores it), so it sits in the
// lowest one. fnn trains in float32; the gradient tests build the same sources with -DFNN_DOUBLE
// so that central differences can be checked to 1e-6 instead of 1e-2.
#ifndef DIST_REAL_H
#define DIST_REAL_H

#include <cblas.h>

#ifdef FNN_DOUBLE
typedef double real;
#define real_gemm cblas_dgemm
#define REAL_MPI MPI_DOUBLE
#define REAL_H5 H5T_NATIVE_DOUBLE
#define real_tanh tanh
#define real_exp exp
#else
typedef float real;
#define real_gemm cblas_sgemm
#define REAL_MPI MPI_FLOAT
#define REAL_H5 H5T_NATIVE_FLOAT
#define real_tanh tanhf
#define real_exp expf
#endif

#endif
