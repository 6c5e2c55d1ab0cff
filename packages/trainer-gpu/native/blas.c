/*
 * Native products for the wasm backend: single-precision matrix products computed by the
 * system's CBLAS (OpenBLAS, or any library exporting cblas_sgemm), reading and writing the
 * wasm backend's heap in place. The library is opened at run time (dlopen), so building this
 * needs only Node's headers and a C compiler, and nothing is linked at build time.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>

typedef void (*sgemm_fn)(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
typedef char *(*corename_fn)(void);
static sgemm_fn sgemm = NULL;
static set_threads_fn set_threads = NULL;
static corename_fn corename = NULL;
static char loaded_from[512] = "";

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* Whether `count` floats from `offset` lie inside a heap of `floats` (no sum can overflow: both are checked first). */
static int fits(int64_t offset, int64_t count, size_t floats) {
  return offset >= 0 && count >= 0 && (uint64_t)count <= (uint64_t)floats && (uint64_t)offset <= (uint64_t)floats - (uint64_t)count;
}

/* x * y * z into *out, 0 if it overflows or is negative (sizes come from JavaScript: never trusted). */
static int size3(int64_t x, int64_t y, int64_t z, int64_t *out) {
  int64_t xy;
  if (x < 0 || y < 0 || z < 0 || __builtin_mul_overflow(x, y, &xy) || __builtin_mul_overflow(xy, z, out)) return 0;
  return 1;
}

/* load(path, threads): opens the library, finds cblas_sgemm; returns the path it loaded. */
static napi_value load(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[512];
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) return throw_error(env, "load(path, threads): path must be a string");
  /* refused, not cut short: a truncated path could name another library */
  if (len >= sizeof path) return throw_error(env, "load(path, threads): the library's path is longer than 511 bytes");
  napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len);
  int32_t threads = 1;
  if (argc > 1) napi_get_value_int32(env, argv[1], &threads);
  /* one loader at a time: worker threads (data-parallel replicas) share this module's state */
  pthread_mutex_lock(&load_lock);
  if (!sgemm) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      pthread_mutex_unlock(&load_lock);
      return throw_error(env, dlerror());
    }
    sgemm_fn f = (sgemm_fn)dlsym(lib, "cblas_sgemm");
    if (!f) {
      pthread_mutex_unlock(&load_lock);
      return throw_error(env, "the library has no cblas_sgemm");
    }
    set_threads = (set_threads_fn)dlsym(lib, "openblas_set_num_threads");
    corename = (corename_fn)dlsym(lib, "openblas_get_corename");
    snprintf(loaded_from, sizeof loaded_from, "%s", path);
    sgemm = f;
  }
  pthread_mutex_unlock(&load_lock);
  if (set_threads && threads > 0) set_threads(threads);
  napi_value out;
  napi_create_string_utf8(env, loaded_from, NAPI_AUTO_LENGTH, &out);
  return out;
}

/*
 * sgemm(heap, transA, transB, m, n, k, a, b, c, batch, strideA, strideB): for each of `batch`
 * products, C_i[m, n] = op(A_i) op(B_i), all row-major and contiguous, at float offsets a, b,
 * c into the ArrayBuffer `heap`; A_i starts at a + i * strideA (0: one A for every product).
 */
static napi_value gemm(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 12) return throw_error(env, "sgemm takes 12 arguments");
  if (!sgemm) return throw_error(env, "sgemm: load() the library first");
  void *data = NULL;
  size_t bytes = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) return throw_error(env, "sgemm: heap must be an ArrayBuffer");
  bool ta = false, tb = false;
  napi_get_value_bool(env, argv[1], &ta);
  napi_get_value_bool(env, argv[2], &tb);
  int64_t v[9];
  for (int i = 0; i < 9; i++) {
    if (napi_get_value_int64(env, argv[3 + i], &v[i]) != napi_ok) return throw_error(env, "sgemm: sizes and offsets must be numbers");
  }
  int64_t m = v[0], n = v[1], k = v[2], a = v[3], b = v[4], c = v[5], batch = v[6], sa = v[7], sb = v[8];
  if (m <= 0 || n <= 0 || k <= 0 || batch <= 0 || a < 0 || b < 0 || c < 0 || sa < 0 || sb < 0) return throw_error(env, "sgemm: bad sizes");
  size_t floats = bytes / sizeof(float);
  int64_t mk, kn, mn, last_a, last_b, all_c;
  if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || !size3(m, k, 1, &mk) || !size3(k, n, 1, &kn) || !size3(m, n, 1, &mn) || !size3(batch - 1, sa, 1, &last_a) ||
      !size3(batch - 1, sb, 1, &last_b) || !size3(batch, mn, 1, &all_c) || !fits(a, last_a, floats) || !fits(a + last_a, mk, floats) || !fits(b, last_b, floats) ||
      !fits(b + last_b, kn, floats) || !fits(c, all_c, floats)) {
    return throw_error(env, "sgemm: an operand lies outside the heap");
  }
  float *heap = (float *)data;
  int lda = ta ? (int)m : (int)k;
  int ldb = tb ? (int)k : (int)n;
  for (int64_t i = 0; i < batch; i++) {
    sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, (int)m, (int)n, (int)k, 1.0f, heap + a + i * sa, lda, heap + b + i * sb, ldb, 0.0f,
          heap + c + i * m * n, (int)n);
  }
  return NULL;
}

/* Reads the float offsets and count arguments shared by the elementwise kernels below. */
static int heap_args(napi_env env, napi_value *argv, size_t from, size_t count, float **heap, size_t *floats, int64_t *out) {
  void *data = NULL;
  size_t bytes = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &bytes) != napi_ok) return 0;
  for (size_t i = 0; i < count; i++) {
    if (napi_get_value_int64(env, argv[from + i], &out[i]) != napi_ok || out[i] < 0) return 0;
  }
  *heap = (float *)data;
  *floats = bytes / sizeof(float);
  return 1;
}

/*
 * The start of a function called as f(heap, ints..., doubles...): `total` arguments, the heap
 * (an ArrayBuffer) and then `ints` non-negative integers into a[]; throws `usage` otherwise.
 */
#define HEAP_CALL(total, ints, usage)                                            \
  size_t argc = (total);                                                        \
  napi_value argv[(total)];                                                     \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);                         \
  float *heap;                                                                  \
  size_t floats;                                                                \
  int64_t a[(ints)];                                                            \
  if (argc != (total) || !heap_args(env, argv, 1, (ints), &heap, &floats, a)) \
  return throw_error(env, usage)

/* Reads `count` numbers from argv[from...] into out; 0 if one is not a number. */
static int doubles(napi_env env, napi_value *argv, size_t from, size_t count, double *out) {
  for (size_t i = 0; i < count; i++)
    if (napi_get_value_double(env, argv[from + i], &out[i]) != napi_ok) return 0;
  return 1;
}


/* exp(heap, x, y, count): y[i] = expf(x[i]), float offsets into the heap (in place allowed). */
static napi_value vexp(napi_env env, napi_callback_info info) {
  HEAP_CALL(4, 3, "exp(heap, x, y, count)");
  if (!fits(a[0], a[2], floats) || !fits(a[1], a[2], floats)) return throw_error(env, "exp: an operand lies outside the heap");
  const float *x = heap + a[0];
  float *y = heap + a[1];
  for (int64_t i = 0; i < a[2]; i++) y[i] = expf(x[i]);
  return NULL;
}

/*
 * The exponentials of the loss and the softmax, eight at a time (GCC's vector extensions: one
 * AVX register, two SSE ones, whatever the target has): y[j] = exp(min(x[j] - sub, cap)), with
 * min(NaN, cap) NaN as the composite has it. exp(d) = 2^n exp(r), n = round(d log2 e) (by adding
 * and subtracting 1.5 * 2^23, which rounds to the nearest integer and leaves it in the low bits),
 * r = d - n ln 2 in two parts (Cody and Waite), exp(r) by Cephes's degree-6 polynomial, and 2^n
 * applied as two normal powers of two, so that results below float32's least normal come out
 * subnormal and above its largest infinite, as expf gives them: within about 1 ulp of the exact
 * value over float32's range (tested against Math.exp). NaN stays NaN.
 */
typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) vf8 vsel(vi8 m, vf8 a, vf8 b) { return (vf8)((m & (vi8)a) | (~m & (vi8)b)); }

static inline __attribute__((always_inline)) vf8 vexp8(vf8 x, vf8 sub, vf8 cap) {
  const vf8 zero = {0};
  /* exp(-104) is under half the least subnormal and exp(89) over the largest float: clamped there, n stays in [-150, 129] */
  const vf8 top = zero + 89.0f, bottom = zero - 104.0f, round = zero + 12582912.0f;
  vf8 d = x - sub;
  d = vsel((d < cap) | (d != d), d, cap);
  vf8 c = vsel(d > top, top, d);
  c = vsel(c < bottom, bottom, c);
  c = vsel(c == c, c, zero); /* NaN: computed at 0, given back below */
  vf8 k = c * 1.44269504088896341f + round;
  vi8 n = (vi8)k - (vi8)round;
  vf8 fn = k - round;
  vf8 r = c - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  vf8 p = zero + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  /* 2^n = 2^n1 2^n2 with both in [-75, 65]: p 2^n1 is exact, the second product rounds once */
  vi8 n1 = n >> 1, n2 = n - n1;
  vf8 y = p * (vf8)((n1 + 127) << 23) * (vf8)((n2 + 127) << 23);
  return vsel(d == d, y, d);
}

/* y[j] = exp(min(x[j] - sub, cap)) for j < n (in place allowed); the tail through the same code */
static inline __attribute__((always_inline)) void exp_shifted(const float *x, float *y, int64_t n, float sub, float cap) {
  const vf8 zero = {0};
  vf8 vs = zero + sub, vc = zero + cap;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    vf8 v;
    memcpy(&v, x + j, sizeof v);
    v = vexp8(v, vs, vc);
    memcpy(y + j, &v, sizeof v);
  }
  if (j < n) {
    vf8 v = zero;
    memcpy(&v, x + j, (size_t)(n - j) * sizeof(float));
    v = vexp8(v, vs, vc);
    memcpy(y + j, &v, (size_t)(n - j) * sizeof(float));
  }
}

/* The loops below are compiled for AVX-512, AVX2 and the baseline, chosen when the addon loads. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/*
 * max of x[0..n) as `m = x[j] > m ? x[j] : m` from m = x[0] computes it (a NaN is ignored, unless
 * x[0] is one), eight at a time.
 */
static inline __attribute__((always_inline)) float max_from_first(const float *x, int64_t n) {
  const vf8 zero = {0};
  vf8 acc = zero + x[0];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    vf8 v;
    memcpy(&v, x + j, sizeof v);
    acc = vsel(v > acc, v, acc);
  }
  float m = x[0];
  for (int k = 0; k < 8; k++) m = acc[k] > m ? acc[k] : m;
  for (; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

/* sum of x[0..n) in double, over 8 partial sums (so it vectorises) */
static inline double sum8(const float *x, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += x[j + k];
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < n; j++) s += x[j];
  return s;
}

VECTOR_CLONES static double xent_rows(const float *z, const int32_t *t, float *g, int64_t n, int64_t v) {
  double total = 0, inv = 1.0 / (double)n;
  for (int64_t r = 0; r < n; r++) {
    const float *zr = z + r * v;
    float *gr = g + r * v;
    float max = max_from_first(zr, v);
    exp_shifted(zr, gr, v, max, INFINITY);
    double sum = sum8(gr, v);
    float scale = (float)(inv / sum);
    for (int64_t j = 0; j < v; j++) gr[j] *= scale;
    total += log(sum) + max;
    int32_t target = t[r];
    if (target >= 0 && target < v) {
      total -= zr[target];
      gr[target] -= (float)inv;
    }
  }
  return total * inv;
}

/*
 * xent(heap, z, t, g, n, v): mean cross-entropy of n rows of v logits at z against int32
 * targets at t (offsets in 4-byte units), writing (softmax - onehot) / n at g; returns the loss.
 * A target outside [0, v) adds no target term.
 */
static napi_value xent(napi_env env, napi_callback_info info) {
  HEAP_CALL(6, 5, "xent(heap, z, t, g, n, v)");
  int64_t zo = a[0], to = a[1], go = a[2], n = a[3], v = a[4];
  int64_t nv;
  if (v <= 0 || !size3(n, v, 1, &nv) || !fits(zo, nv, floats) || !fits(go, nv, floats) || !fits(to, n, floats)) return throw_error(env, "xent: an operand lies outside the heap");
  double loss = xent_rows(heap + zo, (const int32_t *)(heap + to), heap + go, n, v);
  napi_value out;
  napi_create_double(env, loss, &out);
  return out;
}

VECTOR_CLONES static void csoftmax_rows(const float *x, float *y, int64_t rows, int64_t t, int64_t w, float ffill, float fcap, float feps) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * w;
    float *yr = y + r * w;
    int64_t p = r % t, open = p + 1 < w ? p + 1 : w;
    /* NaN as the composite has it: a NaN score makes the max NaN, min(NaN, cap) is NaN, a NaN sum stays NaN */
    float max = open < w ? ffill : -INFINITY;
    for (int64_t j = 0; j < open; j++) {
      if (xr[j] > max || isnan(xr[j])) max = xr[j];
      if (isnan(max)) break;
    }
    exp_shifted(xr, yr, open, max, fcap);
    double sum = sum8(yr, open);
    float masked = 0;
    if (open < w) {
      exp_shifted(&ffill, &masked, 1, max, fcap);
      sum += (double)masked * (double)(w - open);
    }
    float zs = (float)sum;
    float inv = 1.0f / (isnan(zs) || fabsf(zs) >= feps ? zs : feps);
    for (int64_t j = 0; j < open; j++) yr[j] *= inv;
    float rest = masked * inv;
    for (int64_t j = open; j < w; j++) yr[j] = rest;
  }
}

/*
 * csoftmax(heap, x, y, batch, t, w, fill, cap, eps): the causal softmax of [batch, t, w] scores
 * at x into y, row by row as the primitives compute it (see FUSED_CAUSAL_SOFTMAX): entries j > p
 * of row p are masked to fill before the max; exp(min(x - max, cap)); the sum in double through
 * the safe denominator eps. Masked entries are exp(fill - max), 0 unless the max is near fill.
 */
static napi_value csoftmax(napi_env env, napi_callback_info info) {
  HEAP_CALL(9, 5, "csoftmax(heap, x, y, batch, t, w, fill, cap, eps)");
  double h[3];
  if (!doubles(env, argv, 6, 3, h)) return throw_error(env, "csoftmax(heap, x, y, batch, t, w, fill, cap, eps)");
  int64_t xo = a[0], yo = a[1], batch = a[2], t = a[3], w = a[4];
  int64_t btw;
  if (!size3(batch, t, w, &btw) || !fits(xo, btw, floats) || !fits(yo, btw, floats)) return throw_error(env, "csoftmax: an operand lies outside the heap");
  csoftmax_rows(heap + xo, heap + yo, batch * t, t, w, (float)h[0], (float)h[1], (float)h[2]);
  return NULL;
}

/*
 * adam(heap, v, m, s, g, v2, m2, s2, n, b1, b2, eps, lr, c1, c2, scale): one Adam update of n
 * floats (see FUSED_ADAM) of the gradient scale * g (the clipping's factor; 1 leaves g as it is),
 * in float32 as the composite computes it: m2 = b1 m + (1 - b1) g; s2 = b2 s + (1 - b2) g^2;
 * v2 = v - lr (m2 / c1) / (sqrt(s2 / c2) + eps).
 */
static napi_value adam(napi_env env, napi_callback_info info) {
  HEAP_CALL(16, 8, "adam(heap, v, m, s, g, v2, m2, s2, n, b1, b2, eps, lr, c1, c2, scale)");
  double h[7];
  if (!doubles(env, argv, 9, 7, h)) return throw_error(env, "adam(heap, v, m, s, g, v2, m2, s2, n, b1, b2, eps, lr, c1, c2, scale)");
  int64_t n = a[7];
  for (int i = 0; i < 7; i++) if (!fits(a[i], n, floats)) return throw_error(env, "adam: an operand lies outside the heap");
  const float *v = heap + a[0], *m = heap + a[1], *s = heap + a[2], *g = heap + a[3];
  float *v2 = heap + a[4], *m2 = heap + a[5], *s2 = heap + a[6];
  const float b1 = (float)h[0], b2 = (float)h[1], ob1 = (float)(1 - h[0]), ob2 = (float)(1 - h[1]);
  const float eps = (float)h[2], lr = (float)h[3], c1 = (float)h[4], c2 = (float)h[5], scale = (float)h[6];
  const int scaled = scale != 1.0f;
  for (int64_t i = 0; i < n; i++) {
    float gi = scaled ? g[i] * scale : g[i];
    float mi = m[i] * b1 + gi * ob1;
    float si = s[i] * b2 + (gi * gi) * ob2;
    m2[i] = mi;
    s2[i] = si;
    v2[i] = v[i] - ((mi / c1) / (sqrtf(si / c2) + eps)) * lr;
  }
  return NULL;
}

/*
 * cmask(heap, x, y, batch, t, grad): the causal product's mask (see FUSED_CAUSAL_MASK) of
 * [batch, t, t] scores: row p keeps its first p + 1 entries; the rest become 0, or x * 0 with
 * grad (NaN and infinities stay NaN there, as the composite's gradient gives).
 */
static napi_value cmask(napi_env env, napi_callback_info info) {
  HEAP_CALL(6, 5, "cmask(heap, x, y, batch, t, grad)");
  int64_t batch = a[2], t = a[3], grad = a[4];
  int64_t all;
  if (!size3(batch, t, t, &all) || !fits(a[0], all, floats) || !fits(a[1], all, floats)) return throw_error(env, "cmask: an operand lies outside the heap");
  const float *x = heap + a[0];
  float *y = heap + a[1];
  for (int64_t r = 0; r < batch * t; r++) {
    const float *xr = x + r * t;
    float *yr = y + r * t;
    int64_t open = r % t + 1;
    for (int64_t j = 0; j < open; j++) yr[j] = xr[j];
    if (grad) {
      for (int64_t j = open; j < t; j++) yr[j] = xr[j] * 0.0f;
    } else {
      for (int64_t j = open; j < t; j++) yr[j] = 0.0f;
    }
  }
  return NULL;
}

/* sumsq(heap, x, n): the sum of the squares of n floats at x, accumulated in double (see FUSED_GLOBAL_NORM). */
static napi_value sumsq(napi_env env, napi_callback_info info) {
  HEAP_CALL(3, 2, "sumsq(heap, x, n)");
  if (!fits(a[0], a[1], floats)) return throw_error(env, "sumsq: an operand lies outside the heap");
  const float *x = heap + a[0];
  /* four partial sums: independent chains the core can run side by side */
  double acc[4] = {0, 0, 0, 0};
  int64_t n = a[1], i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; j++) acc[j] += (double)x[i + j] * (double)x[i + j];
  }
  for (; i < n; i++) acc[0] += (double)x[i] * (double)x[i];
  napi_value out;
  napi_create_double(env, (acc[0] + acc[1]) + (acc[2] + acc[3]), &out);
  return out;
}

/* colsum(heap, x, y, outer, inner): y[j] = sum over r < outer of x[r * inner + j], in double. */
static napi_value colsum(napi_env env, napi_callback_info info) {
  HEAP_CALL(5, 4, "colsum(heap, x, y, outer, inner)");
  int64_t outer = a[2], inner = a[3];
  int64_t oi;
  if (!size3(outer, inner, 1, &oi) || !fits(a[0], oi, floats) || !fits(a[1], inner, floats)) return throw_error(env, "colsum: an operand lies outside the heap");
  const float *x = heap + a[0];
  float *y = heap + a[1];
  for (int64_t j0 = 0; j0 < inner; j0 += 256) {
    double acc[256];
    int64_t len = inner - j0 < 256 ? inner - j0 : 256;
    for (int64_t j = 0; j < len; j++) acc[j] = 0;
    for (int64_t r = 0; r < outer; r++) {
      const float *row = x + r * inner + j0;
      for (int64_t j = 0; j < len; j++) acc[j] += row[j];
    }
    for (int64_t j = 0; j < len; j++) y[j0 + j] = (float)acc[j];
  }
  return NULL;
}

/*
 * normalize(heap, x, n, r, rows, w, eps): layer norm's normalisation of each row of w floats
 * (see FUSED_NORMALIZE): the mean and the centred mean square in double, r = sqrt(var + eps)
 * in float, n = (x - mean) / r.
 */
static napi_value normalize(napi_env env, napi_callback_info info) {
  HEAP_CALL(7, 5, "normalize(heap, x, n, r, rows, w, eps)");
  double eps;
  if (!doubles(env, argv, 6, 1, &eps)) return throw_error(env, "normalize(heap, x, n, r, rows, w, eps)");
  int64_t rows = a[3], w = a[4];
  int64_t rw;
  if (!size3(rows, w, 1, &rw) || !fits(a[0], rw, floats) || !fits(a[1], rw, floats) || !fits(a[2], rows, floats)) return throw_error(env, "normalize: an operand lies outside the heap");
  for (int64_t r = 0; r < rows; r++) {
    const float *x = heap + a[0] + r * w;
    float *n = heap + a[1] + r * w;
    double sum = 0;
    for (int64_t j = 0; j < w; j++) sum += x[j];
    float mean = (float)(sum / (double)w);
    double sq = 0;
    for (int64_t j = 0; j < w; j++) {
      float c = x[j] - mean;
      n[j] = c;
      sq += (float)(c * c);
    }
    float root = sqrtf((float)(sq / (double)w) + (float)eps);
    heap[a[2] + r] = root;
    for (int64_t j = 0; j < w; j++) n[j] /= root;
  }
  return NULL;
}

/* normalize_grad(heap, dy, n, r, dx, rows, w): dx = dc - mean(dc), dc = (dy - n mean(dy n)) / r, per row. */
static napi_value normalize_grad(napi_env env, napi_callback_info info) {
  HEAP_CALL(7, 6, "normalize_grad(heap, dy, n, r, dx, rows, w)");
  int64_t rows = a[4], w = a[5];
  int64_t rw;
  if (!size3(rows, w, 1, &rw) || !fits(a[0], rw, floats) || !fits(a[1], rw, floats) || !fits(a[2], rows, floats) || !fits(a[3], rw, floats))
    return throw_error(env, "normalize_grad: an operand lies outside the heap");
  for (int64_t r = 0; r < rows; r++) {
    const float *dy = heap + a[0] + r * w, *n = heap + a[1] + r * w;
    float *dx = heap + a[3] + r * w;
    double dot = 0;
    for (int64_t j = 0; j < w; j++) dot += (double)dy[j] * n[j];
    double k = dot / (double)w, inv = 1.0 / heap[a[2] + r];
    double sum = 0;
    for (int64_t j = 0; j < w; j++) {
      float dc = (float)((dy[j] - n[j] * k) * inv);
      dx[j] = dc;
      sum += dc;
    }
    float mean = (float)(sum / (double)w);
    for (int64_t j = 0; j < w; j++) dx[j] -= mean;
  }
  return NULL;
}

/*
 * dconv(heap, x, k, y, b, t, c, lags, per_lane): the causal depthwise convolution (see
 * FUSED_DEPTHWISE_CONV) of [b, t, c] at x by kernels [lanes, lags, c] at k (sequence s uses
 * lane s / per_lane) into y: y[s, p] = sum over lag <= p of k[lane, lag] * x[s, p - lag].
 */
static napi_value dconv(napi_env env, napi_callback_info info) {
  HEAP_CALL(9, 8, "dconv(heap, x, k, y, b, t, c, lags, perLane)");
  int64_t b = a[3], t = a[4], c = a[5], lags = a[6], per = a[7];
  int64_t btc, kn;
  /* every sequence's lane must have its kernels: lanes = b / per exactly */
  if (per <= 0 || b % per != 0 || !size3(b, t, c, &btc) || !size3(b / per, lags, c, &kn) || !fits(a[0], btc, floats) || !fits(a[2], btc, floats) || !fits(a[1], kn, floats))
    return throw_error(env, "dconv: an operand lies outside the heap");
  const float *x = heap + a[0];
  float *y = heap + a[2];
  for (int64_t s = 0; s < b; s++) {
    const float *k = heap + a[1] + (s / per) * lags * c;
    for (int64_t p = 0; p < t; p++) {
      int64_t o = (s * t + p) * c;
      for (int64_t j = 0; j < c; j++) y[o + j] = k[j] * x[o + j];
      for (int64_t lag = 1; lag < lags; lag++) {
        const float *kl = k + lag * c;
        if (lag > p) {
          /* the zero fill, multiplied as the composite does: NaN where the kernel is not finite */
          for (int64_t j = 0; j < c; j++) y[o + j] += kl[j] * 0.0f;
          continue;
        }
        const float *xi = x + o - lag * c;
        for (int64_t j = 0; j < c; j++) y[o + j] += kl[j] * xi[j];
      }
    }
  }
  return NULL;
}

/*
 * dconv_grad(heap, dy, x, k, dx, dk, b, t, c, lags, per_lane): its backward:
 * dx[s, p] = sum over lag of k[lane, lag] * dy[s, p + lag]; dk[lane, lag] = sum of dy[s, p] * x[s, p - lag] (in double).
 */
static napi_value dconv_grad(napi_env env, napi_callback_info info) {
  HEAP_CALL(11, 10, "dconvGrad(heap, dy, x, k, dx, dk, b, t, c, lags, perLane)");
  int64_t b = a[5], t = a[6], c = a[7], lags = a[8], per = a[9];
  int64_t btc, kn;
  if (per <= 0 || b % per != 0 || !size3(b, t, c, &btc) || !size3(b / per, lags, c, &kn) || !fits(a[0], btc, floats) || !fits(a[1], btc, floats) ||
      !fits(a[3], btc, floats) || !fits(a[2], kn, floats) || !fits(a[4], kn, floats))
    return throw_error(env, "dconvGrad: an operand lies outside the heap");
  const float *dy = heap + a[0], *x = heap + a[1];
  float *dx = heap + a[3], *dk = heap + a[4];
  double *acc = (double *)calloc((size_t)(kn > 0 ? kn : 1), sizeof(double));
  if (!acc) return throw_error(env, "dconvGrad: out of memory");
  for (int64_t s = 0; s < b; s++) {
    int64_t k0 = (s / per) * lags * c;
    const float *k = heap + a[2] + k0;
    for (int64_t p = 0; p < t; p++) {
      int64_t o = (s * t + p) * c;
      for (int64_t j = 0; j < c; j++) dx[o + j] = k[j] * dy[o + j];
      for (int64_t lag = 1; lag < lags && p + lag < t; lag++) {
        const float *di = dy + o + lag * c, *kl = k + lag * c;
        for (int64_t j = 0; j < c; j++) dx[o + j] += kl[j] * di[j];
      }
      for (int64_t lag = 0; lag < lags; lag++) {
        double *al = acc + k0 + lag * c;
        if (lag > p) {
          for (int64_t j = 0; j < c; j++) al[j] += (double)(dy[o + j] * 0.0f);
          continue;
        }
        const float *xi = x + o - lag * c;
        for (int64_t j = 0; j < c; j++) al[j] += (double)(dy[o + j] * xi[j]);
      }
    }
  }
  for (int64_t i = 0; i < kn; i++) dk[i] = (float)acc[i];
  free(acc);
  return NULL;
}

/* core(): the kernels OpenBLAS chose for this CPU (openblas_get_corename), or "" for another library. */
static napi_value core(napi_env env, napi_callback_info info) {
  (void)info;
  const char *name = corename ? corename() : "";
  napi_value out;
  napi_create_string_utf8(env, name ? name : "", NAPI_AUTO_LENGTH, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "load", NAPI_AUTO_LENGTH, load, NULL, &f);
  napi_set_named_property(env, exports, "load", f);
  napi_create_function(env, "core", NAPI_AUTO_LENGTH, core, NULL, &f);
  napi_set_named_property(env, exports, "core", f);
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, gemm, NULL, &f);
  napi_set_named_property(env, exports, "sgemm", f);
  napi_create_function(env, "exp", NAPI_AUTO_LENGTH, vexp, NULL, &f);
  napi_set_named_property(env, exports, "exp", f);
  napi_create_function(env, "xent", NAPI_AUTO_LENGTH, xent, NULL, &f);
  napi_set_named_property(env, exports, "xent", f);
  napi_create_function(env, "csoftmax", NAPI_AUTO_LENGTH, csoftmax, NULL, &f);
  napi_set_named_property(env, exports, "csoftmax", f);
  napi_create_function(env, "adam", NAPI_AUTO_LENGTH, adam, NULL, &f);
  napi_set_named_property(env, exports, "adam", f);
  napi_create_function(env, "cmask", NAPI_AUTO_LENGTH, cmask, NULL, &f);
  napi_set_named_property(env, exports, "cmask", f);
  napi_create_function(env, "sumsq", NAPI_AUTO_LENGTH, sumsq, NULL, &f);
  napi_set_named_property(env, exports, "sumsq", f);
  napi_create_function(env, "colsum", NAPI_AUTO_LENGTH, colsum, NULL, &f);
  napi_set_named_property(env, exports, "colsum", f);
  napi_create_function(env, "normalize", NAPI_AUTO_LENGTH, normalize, NULL, &f);
  napi_set_named_property(env, exports, "normalize", f);
  napi_create_function(env, "normalizeGrad", NAPI_AUTO_LENGTH, normalize_grad, NULL, &f);
  napi_set_named_property(env, exports, "normalizeGrad", f);
  napi_create_function(env, "dconv", NAPI_AUTO_LENGTH, dconv, NULL, &f);
  napi_set_named_property(env, exports, "dconv", f);
  napi_create_function(env, "dconvGrad", NAPI_AUTO_LENGTH, dconv_grad, NULL, &f);
  napi_set_named_property(env, exports, "dconvGrad", f);
  return exports;
}
