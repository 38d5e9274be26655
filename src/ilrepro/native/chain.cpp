// One call per update for chains of linear layers (MLP, autoencoder): the inference loop of
// ilrepro.energy.infer followed by ilrepro.energy.weight_directions (il_directions), and backprop's
// gradient (bp_gradient). The readable reference is the Python code; this is the same arithmetic,
// with the state preallocated and reused across calls, the bias / activation / error / derivative of
// a layer fused into one pass after its GEMM, and the work that is exactly zero skipped (nodes the
// error front has not reached yet keep their feedforward values: their errors are exactly zero).
//
// Notation (as in energy.py): node k = 0..L, h_0 = x clamped, layer l maps node l to node l+1:
//   mu_{l+1} = out_act_l(W_l in_act_l(h_l) + b_l);  a_l = in_act_l(h_l)  (the presynaptic activity)
//   e_k = h_k - mu_k (hidden),  e_L = target - link(mu_L),  g_k = e_k * out_act_{k-1}'(mu_k)
//   step: h_k <- (h_k - gt e_k) + gb ((g_{k+1} W_k) * in_act_k'(h_k))
// GEMMs are torch's own (at::mm_out / at::addmm_out: MKL or whatever BLAS torch was built with).
#include <torch/extension.h>

#include <cmath>
#include <type_traits>
#include <vector>

namespace {

using at::Tensor;

enum Act : int64_t { ID = 0, RELU = 1, SIGMOID = 2, TANH = 3 };
enum Link : int64_t { CE = 0, BCE = 1, MSE = 2 };
enum Target : int64_t { HARD = 0, SOFT = 1, PROX = 2 };

template <int K, typename T>
inline T act(T z) {
  if constexpr (K == RELU) return z < T(0) ? T(0) : z;
  else if constexpr (K == SIGMOID) return T(1) / (T(1) + std::exp(-z));
  else if constexpr (K == TANH) return std::tanh(z);
  else return z;
}

// v * the activation's derivative, from its output y (models.py's _D_FROM_OUTPUT; for in_act the
// reference's _D_FROM_INPUT is the same function of y = in_act(h)); identity: v itself
template <int K, typename T>
inline T times_dact(T v, T y) {
  if constexpr (K == RELU) return y > T(0) ? v : T(0) * v;  // v * sign(y), y >= 0
  else if constexpr (K == SIGMOID) return v * (y * (T(1) - y));
  else if constexpr (K == TANH) return v * (T(1) - y * y);
  else return v;
}

// calls f(std::integral_constant<int, k>) for the activation code k: the loops are compiled (and
// vectorised) once per activation rather than branching per element
template <typename F>
inline void with_act(int64_t k, F&& f) {
  switch (k) {
    case RELU: f(std::integral_constant<int, RELU>{}); break;
    case SIGMOID: f(std::integral_constant<int, SIGMOID>{}); break;
    case TANH: f(std::integral_constant<int, TANH>{}); break;
    default: f(std::integral_constant<int, ID>{}); break;
  }
}

// sigmoid and tanh by torch's own (vectorised) kernels, in place: the reference's bits (the soft
// targets' and PC-Nudge's cancellations amplify a last-bit difference)
inline bool transcendental(int64_t k) { return k == SIGMOID || k == TANH; }
inline void aten_act_(Tensor& t, int64_t k) {
  if (k == SIGMOID) at::sigmoid_(t);
  else if (k == TANH) at::tanh_(t);
}
inline void aten_act_out(Tensor& out, const Tensor& t, int64_t k) {
  if (k == SIGMOID) at::sigmoid_out(out, t);
  else if (k == TANH) at::tanh_out(out, t);
}

template <typename T>
T activity_norm(const T* a, int64_t B, int64_t n) {  // mean_b ||a_b||^2
  double total = 0.0;
  for (int64_t r = 0; r < B; ++r) {
    double s = 0.0;
    const T* row = a + r * n;
    for (int64_t j = 0; j < n; ++j) s += double(row[j]) * double(row[j]);
    total += double(T(s));
  }
  return T(total / double(B));
}

struct Config {
  std::vector<int64_t> in_act, out_act;  // per layer
  int64_t link = CE;
  int64_t target = HARD;
  double t1 = 0.0, t2 = 0.0;  // soft: n (t1); prox: alpha (t1), eps (t2)
};

// The preallocated state of one chain at one batch size, reused across calls.
struct Workspace {
  at::ScalarType dtype = at::kFloat;
  int64_t B = -1;
  std::vector<int64_t> n, in_act;
  std::vector<Tensor> h, a, mu, e, g, fb;  // indexed by node k = 0..L
  std::vector<Tensor> Wt;  // W_l^T, contiguous (l >= 1): the forward GEMMs of the inference loop
  std::vector<char> fb_ready;  // fb_k already holds g_{k+1} W_k (batch 1: from the fused pass)
  Tensor p;  // link(mu_L)
  bool fits(at::ScalarType dt, int64_t b, const std::vector<int64_t>& sizes, const Config& c) const {
    return dt == dtype && b == B && sizes == n && c.in_act == in_act;
  }
  void allocate(at::ScalarType dt, int64_t b, const std::vector<int64_t>& sizes, const Config& c) {
    dtype = dt, B = b, n = sizes, in_act = c.in_act;
    const int64_t L = int64_t(n.size()) - 1;
    auto opt = at::TensorOptions().dtype(dt);
    h.assign(L + 1, Tensor()), a.assign(L + 1, Tensor()), mu.assign(L + 1, Tensor());
    e.assign(L + 1, Tensor()), g.assign(L + 1, Tensor()), fb.assign(L + 1, Tensor());
    p = at::empty({B, n[L]}, opt);
    Wt.assign(L, Tensor());
    fb_ready.assign(L + 1, 0);
    for (int64_t l = 1; l < L; ++l) Wt[l] = at::empty({n[l], n[l + 1]}, opt);
    for (int64_t k = 1; k <= L; ++k) {
      mu[k] = at::empty({B, n[k]}, opt), e[k] = at::empty({B, n[k]}, opt), g[k] = at::empty({B, n[k]}, opt);
      h[k] = at::empty({B, n[k]}, opt), fb[k] = at::empty({B, n[k]}, opt);
      a[k] = (k < L && c.in_act[k] != ID) ? at::empty({B, n[k]}, opt) : h[k];
    }
  }
};

Workspace& workspace(int which) {
  static Workspace ws[2];  // one for the inference loop, one for backprop
  return ws[which];
}

template <typename T>
struct Chain {
  const std::vector<Tensor>& W;
  const std::vector<Tensor>& b;
  const Config& c;
  Workspace& ws;
  int64_t L, B;
  bool fused = false;  // batch 1, not exact: a hidden layer's forward and next feedback in one pass over W

  // Batch 1, hidden node k+1 = layer k's output (k >= 1), ReLU or identity: one pass over W_k's rows
  // gives mu_{k+1} = out_act(W_k a_k + b_k), e_{k+1}, g_{k+1} and the next step's feedback
  // fb_k = g_{k+1} W_k while the row is in L1: W_k is read once per step rather than twice (at batch 1
  // the loop is bound by reading the weights). Sums in row order, not MKL's: rounding apart the same.
  void fused_layer(int64_t k) {
    const int64_t R = ws.n[k + 1], C = ws.n[k], oa = c.out_act[k];
    const T* Wk = W[k].data_ptr<T>();
    const T* bias = b[k].data_ptr<T>();
    const T* a = ws.a[k].data_ptr<T>();
    const T* h = ws.h[k + 1].data_ptr<T>();
    T* mu = ws.mu[k + 1].data_ptr<T>();
    T* e = ws.e[k + 1].data_ptr<T>();
    T* g = ws.g[k + 1].data_ptr<T>();
    T* fb = ws.fb[k].data_ptr<T>();
    for (int64_t i = 0; i < C; ++i) fb[i] = T(0);
    auto node = [&](int64_t j, T acc) {  // bias, activation, error, g of output unit j
      const T z = acc + bias[j];
      const T m = oa == RELU ? (z < T(0) ? T(0) : z) : z;
      const T ee = h[j] - m;
      const T gj = oa == RELU ? (m > T(0) ? ee : T(0) * ee) : ee;
      mu[j] = m, e[j] = ee, g[j] = gj;
      return gj;
    };
    int64_t j = 0;
    for (; j + 4 <= R; j += 4) {  // four rows at a time: four independent sums, a[i] loaded once
      const T* r0 = Wk + j * C; const T* r1 = r0 + C; const T* r2 = r1 + C; const T* r3 = r2 + C;
      T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t i = 0; i < C; ++i) {
        const T ai = a[i];
        s0 += r0[i] * ai, s1 += r1[i] * ai, s2 += r2[i] * ai, s3 += r3[i] * ai;
      }
      const T g0 = node(j, s0), g1 = node(j + 1, s1), g2 = node(j + 2, s2), g3 = node(j + 3, s3);
      if (g0 == T(0) && g1 == T(0) && g2 == T(0) && g3 == T(0)) continue;
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) fb[i] += (g0 * r0[i] + g1 * r1[i]) + (g2 * r2[i] + g3 * r3[i]);
    }
    for (; j < R; ++j) {
      const T* row = Wk + j * C;
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < C; ++i) acc += row[i] * a[i];
      const T gj = node(j, acc);
      if (gj == T(0)) continue;
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) fb[i] += gj * row[i];
    }
    ws.fb_ready[k] = 1;
  }
  bool can_fuse(int64_t k) const {  // layer k -> hidden node k+1
    return fused && k >= 1 && k + 1 < L && (c.out_act[k] == ID || c.out_act[k] == RELU);
  }

  // mu_k += b_k-1, then ReLU if that is the activation (sigmoid / tanh: the caller's aten_act_)
  void add_bias_act(int64_t k) {
    const int64_t n = ws.n[k], oa = c.out_act[k - 1];
    T* mu = ws.mu[k].data_ptr<T>();
    const T* bias = b[k - 1].data_ptr<T>();
    with_act(oa == RELU ? RELU : ID, [&](auto OA) {
      for (int64_t r = 0; r < B; ++r) {
        T* m = mu + r * n;
        for (int64_t j = 0; j < n; ++j) m[j] = act<OA.value, T>(m[j] + bias[j]);
      }
    });
  }

  // mu_k = out_act(raw + b) (raw: the GEMM's result, in mu_k) and, as forward init, h_k = mu_k,
  // a_k = in_act_k(h_k), e_k = g_k = 0
  void forward_node(int64_t k) {
    const int64_t n = ws.n[k], oa = c.out_act[k - 1];
    const int64_t ia = k < L ? c.in_act[k] : ID;
    T* mu = ws.mu[k].data_ptr<T>();
    T* h = ws.h[k].data_ptr<T>();
    T* a = ws.a[k].data_ptr<T>();
    const T* bias = b[k - 1].data_ptr<T>();
    if (transcendental(oa) || transcendental(ia)) {
      add_bias_act(k);
      aten_act_(ws.mu[k], oa);
      ws.h[k].copy_(ws.mu[k]);
      if (transcendental(ia)) aten_act_out(ws.a[k], ws.h[k], ia);
      else if (ia == RELU) at::relu_out(ws.a[k], ws.h[k]);
    } else {
      with_act(oa, [&](auto OA) {
        with_act(ia, [&](auto IA) {
          for (int64_t r = 0; r < B; ++r) {
            T* m = mu + r * n; T* hr = h + r * n; T* ar = a + r * n;
            for (int64_t j = 0; j < n; ++j) {
              const T v = act<OA.value, T>(m[j] + bias[j]);
              m[j] = v, hr[j] = v;
              if constexpr (IA.value != ID) ar[j] = act<IA.value, T>(v);
            }
          }
        });
      });
    }
    if (k < L) ws.e[k].zero_(), ws.g[k].zero_();
  }

  // a hidden node's error and g; ``raw``: mu_k holds the GEMM's result (add the bias, activate)
  void hidden_node(int64_t k, bool raw) {
    const int64_t n = ws.n[k], oa = c.out_act[k - 1];
    T* mu = ws.mu[k].data_ptr<T>();
    const T* h = ws.h[k].data_ptr<T>();
    T* e = ws.e[k].data_ptr<T>();
    T* g = ws.g[k].data_ptr<T>();
    const T* bias = b[k - 1].data_ptr<T>();
    const int64_t total = B * n;
    if (raw && transcendental(oa)) {
      add_bias_act(k);
      aten_act_(ws.mu[k], oa);
      raw = false;
    }
    with_act(oa, [&](auto OA) {
      if (raw) {  // one pass: bias, activation, error, g
        for (int64_t r = 0; r < B; ++r) {
          T* m = mu + r * n; const T* hr = h + r * n; T* er = e + r * n; T* gr = g + r * n;
          for (int64_t j = 0; j < n; ++j) {
            const T v = act<OA.value, T>(m[j] + bias[j]);
            const T ee = hr[j] - v;
            m[j] = v, er[j] = ee, gr[j] = times_dact<OA.value, T>(ee, v);
          }
        }
      } else {
        for (int64_t i = 0; i < total; ++i) {
          const T ee = h[i] - mu[i];
          e[i] = ee, g[i] = times_dact<OA.value, T>(ee, mu[i]);
        }
      }
    });
  }

  // Batch 1, not exact, a linear output layer and a hard or IL-prox target: the output node by plain
  // loops, no ATen call (at batch 1 each costs as much as the arithmetic): mu_L = W_{L-1} a_{L-1} + b,
  // p = link(mu_L), e_L = g_L = target - p, and with ``feedback`` the next step's fb_{L-1} = g_L W_{L-1}
  bool can_fuse_output() const { return fused && c.out_act[L - 1] == ID && c.target != SOFT && L >= 2; }
  void output_fused(const T* y, bool feedback) {
    const int64_t R = ws.n[L], C = ws.n[L - 1];
    const T* Wk = W[L - 1].data_ptr<T>();
    const T* bias = b[L - 1].data_ptr<T>();
    const T* a = ws.a[L - 1].data_ptr<T>();
    T* mu = ws.mu[L].data_ptr<T>();
    T* e = ws.e[L].data_ptr<T>();
    T* g = ws.g[L].data_ptr<T>();
    T* p = ws.p.data_ptr<T>();
    for (int64_t j = 0; j < R; ++j) {
      const T* row = Wk + j * C;
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < C; ++i) acc += row[i] * a[i];
      mu[j] = acc + bias[j];
    }
    if (c.link == CE) {
      T mx = mu[0];
      for (int64_t j = 1; j < R; ++j) mx = mu[j] > mx ? mu[j] : mx;
      T sum = T(0);
      for (int64_t j = 0; j < R; ++j) p[j] = std::exp(mu[j] - mx), sum += p[j];
      for (int64_t j = 0; j < R; ++j) p[j] = p[j] / sum;
    } else if (c.link == BCE) {
      for (int64_t j = 0; j < R; ++j) p[j] = T(1) / (T(1) + std::exp(-mu[j]));
    } else {
      for (int64_t j = 0; j < R; ++j) p[j] = mu[j];
    }
    T kappa = T(0);
    if (c.target == PROX) {
      const T one = T(1), alpha = T(c.t1), eps = T(c.t2);
      const T an = alpha * (activity_norm<T>(a, 1, C) + one + eps);
      kappa = an / (one + an);
    }
    for (int64_t j = 0; j < R; ++j) {
      const T tg = c.target == HARD ? y[j] : p[j] + kappa * (y[j] - p[j]);
      e[j] = g[j] = tg - p[j];
    }
    if (!feedback) return;
    T* fb = ws.fb[L - 1].data_ptr<T>();
    for (int64_t i = 0; i < C; ++i) fb[i] = T(0);
    for (int64_t j = 0; j < R; ++j) {
      const T gj = g[j];
      const T* row = Wk + j * C;
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) fb[i] += gj * row[i];
    }
    ws.fb_ready[L - 1] = 1;
  }

  // the output node: mu_L from the GEMM's result, the target, e_L = target - link(mu_L), g_L
  void output_node(const T* y) {
    const int64_t n = ws.n[L], oa = c.out_act[L - 1];
    T* mu = ws.mu[L].data_ptr<T>();
    T* e = ws.e[L].data_ptr<T>();
    T* g = ws.g[L].data_ptr<T>();
    const T* bias = b[L - 1].data_ptr<T>();
    T kappa = T(0);
    if (c.target == PROX) {  // prox_kappa: n = mean_b ||a_{L-1}||^2 + 1 + eps, kappa = alpha n / (1 + alpha n)
      const T one = T(1), alpha = T(c.t1), eps = T(c.t2);
      const T nn = activity_norm<T>(ws_a(L - 1), B, ws.n[L - 1]) + one + eps;
      const T an = alpha * nn;
      kappa = an / (one + an);
    }
    const T sn = T(c.t1), sm = T(1.0 - c.t1);
    add_bias_act(L);
    aten_act_(ws.mu[L], oa);
    // the link by torch's own kernels: the soft targets' e_L = n y + (1 - n) p - p cancels, so p must
    // be the reference's to the last bit
    if (c.link == CE) at::_softmax_out(ws.p, ws.mu[L], 1, false);
    else if (c.link == BCE) at::sigmoid_out(ws.p, ws.mu[L]);
    else ws.p.copy_(ws.mu[L]);
    const T* pp = ws.p.data_ptr<T>();
    for (int64_t r = 0; r < B; ++r) {
      T* m = mu + r * n; T* er = e + r * n; T* gr = g + r * n;
      const T* yr = y + r * n;
      const T* p = pp + r * n;
      with_act(oa, [&](auto OA) {
        for (int64_t j = 0; j < n; ++j) {
          T tg;
          if (c.target == HARD) tg = yr[j];
          else if (c.target == SOFT) tg = sn * yr[j] + sm * p[j];
          else tg = p[j] + kappa * (yr[j] - p[j]);
          const T ee = tg - p[j];
          er[j] = ee, gr[j] = times_dact<OA.value, T>(ee, m[j]);
        }
      });
    }
  }

  const T* ws_a(int64_t k) { return ws.a[k].data_ptr<T>(); }

  // h_k <- (h_k - gt e_k) + gb ((g_{k+1} W_k) * in_act_k'(h_k)), then a_k = in_act_k(h_k)
  void move_node(int64_t k, T gt, T gb) {
    if (ws.fb_ready[k]) ws.fb_ready[k] = 0;  // computed by the fused pass, from this step's g_{k+1}
    else at::mm_out(ws.fb[k], ws.g[k + 1], W[k]);
    const int64_t ia = c.in_act[k];
    const int64_t total = B * ws.n[k];
    T* h = ws.h[k].data_ptr<T>();
    T* a = ws.a[k].data_ptr<T>();
    const T* e = ws.e[k].data_ptr<T>();
    const T* f = ws.fb[k].data_ptr<T>();
    with_act(ia, [&](auto IA) {
      for (int64_t i = 0; i < total; ++i) {
        const T hn = (h[i] - gt * e[i]) + times_dact<IA.value, T>(f[i], a[i]) * gb;
        h[i] = hn;
        if constexpr (IA.value == RELU) a[i] = act<IA.value, T>(hn);
      }
    });
    if (transcendental(ia)) aten_act_out(ws.a[k], ws.h[k], ia);
  }

  // mu_k (raw) = a_{k-1} W_{k-1}^T; ``transposed``: from the contiguous copy W_{k-1}^T (faster, in
  // particular at batch 1, but MKL then sums in another order: not the reference's bits)
  void gemm_forward(int64_t k, const Tensor& a_prev, bool transposed = false) {
    if (transposed && !fused && k >= 2) at::mm_out(ws.mu[k], a_prev, ws.Wt[k - 1]);
    else at::mm_out(ws.mu[k], a_prev, W[k - 1].t());
  }

  void transpose_weights() {  // ws.Wt[l] = W_l^T, in 32 x 32 tiles
    for (int64_t l = 1; l < L; ++l) {
      const int64_t R = W[l].size(0), C = W[l].size(1);
      const T* src = W[l].data_ptr<T>();
      T* dst = ws.Wt[l].data_ptr<T>();
      for (int64_t i0 = 0; i0 < R; i0 += 32)
        for (int64_t j0 = 0; j0 < C; j0 += 32) {
          const int64_t i1 = std::min(R, i0 + 32), j1 = std::min(C, j0 + 32);
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = j0; j < j1; ++j) dst[j * R + i] = src[i * C + j];
        }
    }
  }
};

void check(const std::vector<Tensor>& W, const std::vector<Tensor>& b, const Tensor& x, const Tensor& y, const Config& c) {
  const size_t L = W.size();
  TORCH_CHECK(L >= 1 && b.size() == L && c.in_act.size() == L && c.out_act.size() == L, "ilrepro native: bad chain");
  TORCH_CHECK(x.dim() == 2 && y.dim() == 2 && x.is_contiguous() && y.is_contiguous(), "ilrepro native: x, y must be contiguous 2-d");
  TORCH_CHECK(x.device().is_cpu(), "ilrepro native: CPU only");
  for (size_t l = 0; l < L; ++l) {
    TORCH_CHECK(W[l].is_contiguous() && b[l].is_contiguous() && W[l].scalar_type() == x.scalar_type() && b[l].scalar_type() == x.scalar_type(),
                "ilrepro native: parameters must be contiguous and of x's dtype");
    TORCH_CHECK(W[l].size(1) == (l == 0 ? x.size(1) : W[l - 1].size(0)), "ilrepro native: layer sizes do not chain");
  }
  TORCH_CHECK(y.size(0) == x.size(0) && y.size(1) == W[L - 1].size(0), "ilrepro native: target shape");
  TORCH_CHECK(c.in_act[0] == ID, "ilrepro native: the input layer reads the data as it is");
}

std::vector<int64_t> sizes_of(const std::vector<Tensor>& W) {
  std::vector<int64_t> n{W[0].size(1)};
  for (const auto& w : W) n.push_back(w.size(0));
  return n;
}

template <typename F>
void dispatch_float(const Tensor& x, F&& f) {
  if (x.scalar_type() == at::kDouble) f(double(0));
  else f(float(0));
}

// the weight directions by the reference's own operations (energy.weight_directions, then the
// algorithm's post-processing), so that an ill-conditioned update (PC-Nudge divides by lam = 1e-4)
// gets the reference's bits: dW_l = g_{l+1}^T a_l, db_l = sum_b g_{l+1}, divided by B (B > 1); then
// IL-prox's division by n_l (``norms``), the negation, a division by ``divisor``; with ``lr`` the
// plain SGD step p <- p - lr d (ilrepro.optim.SGD's p.add_(g, alpha=-lr)) while d is still in cache.
// ``keep`` false: the caller does not read the directions (nothing is returned); at batch 1 with the
// step they are then not written out at all: the step reads and writes W only (2 weight-sized streams,
// not 3 and a fresh tensor), with the same bits.
std::vector<Tensor> directions(Workspace& ws, const Tensor& x, int64_t L, int64_t B, const std::vector<double>& norms, bool negate,
                               double divisor, const std::vector<Tensor>& W, const std::vector<Tensor>& b, double lr, bool keep) {
  std::vector<Tensor> out;
  for (int64_t l = 0; l < L; ++l) {
    const Tensor& a = l == 0 ? x : ws.a[l];
    if (B == 1 && lr == lr) {
      // batch 1, plain SGD: the outer product and the step in one pass over W, in the reference's order:
      // dW_ji = g_j a_i (the GEMM's bits: one product), / n_l (IL-prox), negated, / divisor; then
      // W_ji = fma(-lr, dW_ji, W_ji) (the bits of torch's add_(dW, alpha=-lr)); db likewise from g_j
      const int64_t R = ws.n[l + 1], C = ws.n[l];
      Tensor dW = keep ? at::empty({R, C}, x.options()) : Tensor();
      Tensor db = keep ? at::empty({R}, x.options()) : Tensor();
      const bool by_norm = !norms.empty(), by_div = divisor == divisor;
      dispatch_float(x, [&](auto zero) {
        using S = decltype(zero);
        const S* g = ws.g[l + 1].data_ptr<S>();
        const S* av = a.data_ptr<S>();
        S* d = keep ? dW.data_ptr<S>() : nullptr;
        S* w = W[l].data_ptr<S>();
        S* bw = b[l].data_ptr<S>();
        S* bd = keep ? db.data_ptr<S>() : nullptr;
        const S step = S(-lr), nl = by_norm ? S(norms[l]) : S(1), dv = by_div ? S(divisor) : S(1);
        auto post = [&](S v) {
          if (by_norm) v = v / nl;
          if (negate) v = -v;
          if (by_div) v = v / dv;
          return v;
        };
        // one row: W_j += step * dW_j, and with KEEP (a compile-time constant: no branch in the loops)
        // dW_j written out; the two loops kept apart (one loop through post() measured ~15 % slower: IL-SGD B=1)
        auto row = [&](auto KEEP, int64_t j) {
          const S gj = g[j];
          S* dr = KEEP.value ? d + j * C : nullptr;
          S* wr = w + j * C;
          if (!by_norm && !by_div) {
            const S sgn = negate ? S(-1) : S(1);
            for (int64_t i = 0; i < C; ++i) {
              const S v = sgn * (gj * av[i]);
              if constexpr (KEEP.value) dr[i] = v;
              wr[i] = std::fma(step, v, wr[i]);
            }
          } else {
            for (int64_t i = 0; i < C; ++i) {
              const S v = post(gj * av[i]);
              if constexpr (KEEP.value) dr[i] = v;
              wr[i] = std::fma(step, v, wr[i]);
            }
          }
          const S vb = post(gj);
          if constexpr (KEEP.value) bd[j] = vb;
          bw[j] = std::fma(step, vb, bw[j]);
        };
        for (int64_t j = 0; j < R; ++j) {
          if (keep) row(std::true_type{}, j);
          else row(std::false_type{}, j);
        }
      });
      if (keep) out.push_back(dW), out.push_back(db);
      continue;
    }
    // x / B for B a power of two and -x are exact: folded into the GEMM's alpha (the same bits as
    // dividing and negating afterwards, one pass over dW fewer); after a division by n_l the
    // negation is still exact (-(x / n) == (-x) / n)
    const bool pow2 = (B & (B - 1)) == 0;
    const bool fold_neg = negate && divisor != divisor;
    const double alpha = (pow2 ? 1.0 / double(B) : 1.0) * (fold_neg ? -1.0 : 1.0);
    Tensor dW = at::empty({ws.n[l + 1], ws.n[l]}, x.options());
    at::addmm_out(dW, dW, ws.g[l + 1].t(), a, /*beta=*/0, alpha);
    Tensor db = at::sum(ws.g[l + 1], 0);
    if (B > 1) db.div_(B);
    if (B > 1 && !pow2) dW.div_(B);
    for (Tensor* d : {&dW, &db}) {
      if (!norms.empty()) d->div_(norms[l]);
      if (negate && (d == &db || !fold_neg)) d->neg_();
      if (divisor == divisor) d->div_(divisor);
    }
    if (lr == lr) W[l].add_(dW, -lr), b[l].add_(db, -lr);
    if (keep) out.push_back(dW), out.push_back(db);
  }
  return out;
}

// workspace ``which`` (0: the inference loop, 1: backprop), (re)allocated when the shapes change, with the
// clamped input as layer 0's presynaptic activity
Workspace& prepared_workspace(int which, const Tensor& x, const std::vector<int64_t>& n, const Config& c) {
  Workspace& ws = workspace(which);
  if (!ws.fits(x.scalar_type(), x.size(0), n, c)) ws.allocate(x.scalar_type(), x.size(0), n, c);
  ws.a[0] = x;
  return ws;
}

template <typename T>
std::vector<Tensor> il_impl(const std::vector<Tensor>& W, const std::vector<Tensor>& b, const Tensor& x, const Tensor& y, const Config& c,
                            int64_t T_steps, double gamma_top, double gamma_bot, bool negate, double divisor, double prox_eps, double lr,
                            bool exact, bool keep) {
  const int64_t L = int64_t(W.size()), B = x.size(0);
  const auto n = sizes_of(W);
  Workspace& ws = prepared_workspace(0, x, n, c);
  Chain<T> ch{W, b, c, ws, L, B};
  const bool tr = !exact && T_steps > 0;  // the loop's forward GEMMs from W^T copies
  ch.fused = tr && B == 1;
  if (tr && !ch.fused) ch.transpose_weights();
  std::fill(ws.fb_ready.begin(), ws.fb_ready.end(), 0);
  // feedforward initialisation: every hidden error is exactly zero
  for (int64_t k = 1; k <= L; ++k) {
    ch.gemm_forward(k, k == 1 ? x : ws.a[k - 1]);
    if (k < L) ch.forward_node(k);
  }
  ch.output_node(y.data_ptr<T>());
  const T gt = T(gamma_top), gb = T(gamma_bot);
  for (int64_t t = 0; t < T_steps && L > 1; ++t) {
    // nodes lo..L-1 move at step t (below lo every error and every feedback is still exactly zero)
    const int64_t lo = std::max<int64_t>(1, L - 1 - t);
    for (int64_t k = lo; k < L; ++k) ch.move_node(k, gt, gb);
    ch.hidden_node(lo, false);  // its prediction reads an unmoved node: only its error changes
    for (int64_t k = lo + 1; k <= L; ++k) {
      if (k < L && ch.can_fuse(k - 1) && t + 1 < T_steps) {  // forward of layer k-1 and its next feedback, one pass
        ch.fused_layer(k - 1);
        continue;
      }
      if (k == L && ch.can_fuse_output()) {
        ch.output_fused(y.data_ptr<T>(), t + 1 < T_steps);
        continue;
      }
      ch.gemm_forward(k, ws.a[k - 1], tr);
      if (k < L) ch.hidden_node(k, true);
      else ch.output_node(y.data_ptr<T>());
    }
  }
  std::vector<double> norms;
  if (prox_eps == prox_eps) {  // IL-prox: each layer's direction divided by n_l = mean_b ||a_l||^2 + 1 + eps
    for (int64_t l = 0; l < L; ++l)
      norms.push_back(double(activity_norm<T>(l == 0 ? x.data_ptr<T>() : ws.a[l].data_ptr<T>(), B, n[l]) + T(1.0) + T(prox_eps)));
  }
  return directions(ws, x, L, B, norms, negate, divisor, W, b, lr, keep);
}

template <typename T>
std::vector<Tensor> bp_impl(const std::vector<Tensor>& W, const std::vector<Tensor>& b, const Tensor& x, const Tensor& y, const Config& c,
                            double lr, const std::vector<double>& norms, bool keep) {
  const int64_t L = int64_t(W.size()), B = x.size(0);
  const auto n = sizes_of(W);
  Workspace& ws = prepared_workspace(1, x, n, c);
  Chain<T> ch{W, b, c, ws, L, B};
  for (int64_t k = 1; k <= L; ++k) {
    ch.gemm_forward(k, k == 1 ? x : ws.a[k - 1]);
    if (k < L) ch.forward_node(k);
  }
  // B dLoss/dlogits: softmax sum(t) - t (ce), sigmoid - t (bce), z - t (mse); directions() divides by B
  {
    const int64_t m = n[L], oa = c.out_act[L - 1];
    T* mu = ws.mu[L].data_ptr<T>();
    T* g = ws.g[L].data_ptr<T>();
    const T* bias = b[L - 1].data_ptr<T>();
    const T* yy = y.data_ptr<T>();
    std::vector<T> p(m);
    ch.add_bias_act(L);
    aten_act_(ws.mu[L], oa);
    for (int64_t r = 0; r < B; ++r) {
      T* z = mu + r * m; T* gr = g + r * m;
      const T* yr = yy + r * m;
      T ts = T(1);
      if (c.link == CE) {
        T mx = z[0];
        for (int64_t j = 1; j < m; ++j) mx = z[j] > mx ? z[j] : mx;
        T s = T(0);
        ts = T(0);
        for (int64_t j = 0; j < m; ++j) p[j] = std::exp(z[j] - mx), s += p[j], ts += yr[j];
        const T inv = T(1) / s;
        for (int64_t j = 0; j < m; ++j) p[j] *= inv;
      } else if (c.link == BCE) {
        for (int64_t j = 0; j < m; ++j) p[j] = T(1) / (T(1) + std::exp(-z[j]));
      } else {
        for (int64_t j = 0; j < m; ++j) p[j] = z[j];
      }
      with_act(oa, [&](auto OA) {
        for (int64_t j = 0; j < m; ++j) gr[j] = times_dact<OA.value, T>(c.link == CE ? p[j] * ts - yr[j] : p[j] - yr[j], z[j]);
      });
    }
  }
  // backward: g_k = ((g_{k+1} W_k) * in_act_k'(h_k)) * out_act_{k-1}'(mu_k)
  for (int64_t k = L - 1; k >= 1; --k) {
    at::mm_out(ws.fb[k], ws.g[k + 1], W[k]);
    const int64_t total = B * n[k], ia = c.in_act[k], oa = c.out_act[k - 1];
    const T* f = ws.fb[k].data_ptr<T>();
    const T* a = ws.a[k].data_ptr<T>();
    const T* mu = ws.mu[k].data_ptr<T>();
    T* g = ws.g[k].data_ptr<T>();
    with_act(ia, [&](auto IA) {
      with_act(oa, [&](auto OA) {
        for (int64_t i = 0; i < total; ++i) g[i] = times_dact<OA.value, T>(times_dact<IA.value, T>(f[i], a[i]), mu[i]);
      });
    });
  }
  return directions(ws, x, L, B, norms, false, NAN, W, b, lr, keep);
}

Config config(std::vector<int64_t> in_act, std::vector<int64_t> out_act, int64_t link, int64_t target, double t1, double t2) {
  Config c;
  c.in_act = std::move(in_act), c.out_act = std::move(out_act), c.link = link, c.target = target, c.t1 = t1, c.t2 = t2;
  return c;
}

}  // namespace

// IL: T inference steps then the weight directions (batch mean); ``prox_eps`` not NaN: each layer's
// divided by n_l = mean_b ||a_l||^2 + 1 + prox_eps (IL-prox); negated if ``negate``; divided by
// ``divisor`` if not NaN. ``lr`` not NaN: also the plain SGD step p <- p - lr * (returned tensor).
// ``exact``: the reference's GEMM layouts throughout (its bits, for the ill-conditioned soft targets);
// else the loop's forward GEMMs read a transposed copy of the weights (float rounding apart, the same).
// ``keep`` false: nothing is returned (the caller does not read the directions; see directions()).
std::vector<Tensor> il_directions(std::vector<Tensor> W, std::vector<Tensor> b, Tensor x, Tensor y, std::vector<int64_t> in_act,
                                  std::vector<int64_t> out_act, int64_t link, int64_t target, double t1, double t2, int64_t T_steps,
                                  double gamma_top, double gamma_bot, bool negate, double divisor, double prox_eps, double lr,
                                  bool exact, bool keep) {
  const Config c = config(std::move(in_act), std::move(out_act), link, target, t1, t2);
  check(W, b, x, y, c);
  at::NoGradGuard no_grad;
  if (x.scalar_type() == at::kDouble) return il_impl<double>(W, b, x, y, c, T_steps, gamma_top, gamma_bot, negate, divisor, prox_eps, lr, exact, keep);
  TORCH_CHECK(x.scalar_type() == at::kFloat, "ilrepro native: float32 or float64");
  return il_impl<float>(W, b, x, y, c, T_steps, gamma_top, gamma_bot, negate, divisor, prox_eps, lr, exact, keep);
}

// BP: dLoss/dtheta of the batch-mean loss of the logits against y (one-hot or soft); ``norms`` not
// empty: each layer's divided by norms[l] (BP-prox's n_l); ``lr`` not NaN: also the plain SGD step;
// ``keep`` false: nothing is returned.
std::vector<Tensor> bp_gradient(std::vector<Tensor> W, std::vector<Tensor> b, Tensor x, Tensor y, std::vector<int64_t> in_act,
                                std::vector<int64_t> out_act, int64_t link, double lr, std::vector<double> norms, bool keep) {
  const Config c = config(std::move(in_act), std::move(out_act), link, HARD, 0.0, 0.0);
  check(W, b, x, y, c);
  at::NoGradGuard no_grad;
  TORCH_CHECK(norms.empty() || int64_t(norms.size()) == int64_t(W.size()), "ilrepro native: one norm per layer");
  if (x.scalar_type() == at::kDouble) return bp_impl<double>(W, b, x, y, c, lr, norms, keep);
  TORCH_CHECK(x.scalar_type() == at::kFloat, "ilrepro native: float32 or float64");
  return bp_impl<float>(W, b, x, y, c, lr, norms, keep);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("il_directions", &il_directions, "IL: inference loop + weight directions, one call");
  m.def("bp_gradient", &bp_gradient, "BP gradient of a linear chain, one call");
}
