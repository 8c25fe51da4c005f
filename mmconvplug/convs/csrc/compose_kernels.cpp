// Fused CPU kernels for the kernel compositions of DO-Conv and RefConv, and
// for CondConv's per-example kernels (the experts mixed by the routing
// weights).
//
// Loaded (compiled on first use) by mmconvplug/convs/cpu_kernels.py, which
// documents when they run and how to turn them off. Each kernel makes one
// pass over its operands: the compositions do about 100 multiply-adds per
// kernel entry (CondConv's mixing, E per example), so on CPU they are bound
// by memory traffic, and the eager formulations (batched matmuls with
// 9-wide operands, layout copies, a depthwise conv over 3x3 images, GEMMs
// with an inner size of E) make several passes, or run below the memory
// bandwidth, where one pass suffices.
//
// Every function takes contiguous CPU tensors of one floating dtype
// (float32 or float64; the Python side checks) and returns fresh tensors.
// Results are deterministic: each output element is summed by one thread
// in a fixed order, whatever the thread count (the small gradients, DO-Conv's
// D and CondConv's routing, add per-chunk partial sums in chunk order, so
// they are deterministic for a given thread count).
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace {

// ---------------------------------------------------------------- DO-Conv
// kernel[o, c, s] = sum_q D[ci, s, q] * W[o, c, q], ci = (o / opg) * cpg + c
// W: (O, cpg, DM); D: (I, S, DM); dt = D transposed to (I, DM, S).
// S_ / DM_ > 0 fix the sizes at compile time (the 3x3 case), 0: runtime.

// Multiply-adds below which a call runs on one thread: waking the other
// threads costs more than they save.
constexpr int64_t kParallelWork = int64_t(1) << 16;

// One (o, c) row: out[j] = sum_i in[i] * mat[i, j], mat (IN x OUT). The
// forward is in = W's row, mat = D transposed (D_mul x k*k); the weight
// gradient is in = grad's row, mat = D (k*k x D_mul). IN_ / OUT_ fix the
// sizes at compile time (the accumulators then stay in registers); 0:
// runtime sizes.
template <typename T, int IN_, int OUT_>
inline void apply_channel_matrix(const T* in, const T* mat, T* out,
                                 int64_t IN, int64_t OUT) {
  if constexpr (IN_ > 0 && OUT_ > 0) {
    T acc[OUT_];
    for (int j = 0; j < OUT_; ++j) acc[j] = in[0] * mat[j];
    for (int i = 1; i < IN_; ++i) {
      const T xi = in[i];
      for (int j = 0; j < OUT_; ++j) acc[j] += xi * mat[i * OUT_ + j];
    }
    for (int j = 0; j < OUT_; ++j) out[j] = acc[j];
  } else {
    for (int64_t j = 0; j < OUT; ++j) out[j] = in[0] * mat[j];
    for (int64_t i = 1; i < IN; ++i) {
      for (int64_t j = 0; j < OUT; ++j) out[j] += in[i] * mat[i * OUT + j];
    }
  }
}

// grad_d[s, q] += sum over `rows` rows r of g[r * stride + s] *
// w[r * stride_w + q]: one input channel's (S x DM) gradient from a block
// of output channels, summed in registers and added once.
template <typename T, int S_, int DM_>
inline void do_grad_depthwise_block(const T* g, const T* w, int64_t rows,
                                    int64_t g_stride, int64_t w_stride,
                                    T* grad_d, int64_t S, int64_t DM) {
  if constexpr (S_ == 9 && DM_ == 9) {
    // The 3x3 case, laid out for 8-wide vectors: acc[s][0:8] (one vector
    // per tap s, broadcasting g[s]), the last column q = 8 as a vector over
    // s = 0..7 (broadcasting w[8]) and one scalar: 11 accumulators that stay
    // in registers (a flat 81-entry array would spill).
    T acc[9][8] = {};
    T last[8] = {};
    T corner = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const T* gr = g + r * g_stride;
      const T* wr = w + r * w_stride;
      for (int s = 0; s < 9; ++s) {
        const T gs = gr[s];
        for (int q = 0; q < 8; ++q) acc[s][q] += gs * wr[q];
      }
      const T w8 = wr[8];
      for (int s = 0; s < 8; ++s) last[s] += gr[s] * w8;
      corner += gr[8] * w8;
    }
    for (int s = 0; s < 9; ++s) {
      for (int q = 0; q < 8; ++q) grad_d[s * 9 + q] += acc[s][q];
    }
    for (int s = 0; s < 8; ++s) grad_d[s * 9 + 8] += last[s];
    grad_d[80] += corner;
  } else if constexpr (S_ > 0 && DM_ > 0) {
    T acc[S_ * DM_] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* gr = g + r * g_stride;
      const T* wr = w + r * w_stride;
      for (int s = 0; s < S_; ++s) {
        const T gs = gr[s];
        for (int q = 0; q < DM_; ++q) acc[s * DM_ + q] += gs * wr[q];
      }
    }
    for (int i = 0; i < S_ * DM_; ++i) grad_d[i] += acc[i];
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      const T* gr = g + r * g_stride;
      const T* wr = w + r * w_stride;
      for (int64_t s = 0; s < S; ++s) {
        for (int64_t q = 0; q < DM; ++q) {
          grad_d[s * DM + q] += gr[s] * wr[q];
        }
      }
    }
  }
}

template <typename T, int S_, int DM_>
void do_forward(const T* w, const T* dt, T* k, int64_t out_channels,
                int64_t cpg, int64_t opg, int64_t S, int64_t DM) {
  const int64_t grain = std::max<int64_t>(1, kParallelWork / (cpg * S * DM));
  at::parallel_for(0, out_channels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      const int64_t ci0 = (o / opg) * cpg;
      for (int64_t c = 0; c < cpg; ++c) {
        apply_channel_matrix<T, DM_, S_>(w + (o * cpg + c) * DM,
                                         dt + (ci0 + c) * DM * S,
                                         k + (o * cpg + c) * S, DM, S);
      }
    }
  });
}

// grad_w[o, c, q] = sum_s g[o, c, s] * D[ci, s, q]
// grad_d[ci, s, q] = sum_{o in ci's group} g[o, c, s] * W[o, c, q]
// Parallel over output channels in `chunks` fixed chunks; chunk k sums its
// part of grad_d into partial_d[k] (I, S, DM), which the caller adds up in
// chunk order: the result depends on the number of chunks, never on
// scheduling. Within a chunk, blocks of up to kRowBlock output channels of
// one group: grad_w row by row, then each input channel's grad_d over the
// block in registers (the block's rows are still in cache). Either output
// may be null (not needed). 64 rows a block: measured at 512 and 1024
// channels (2 threads), the D gradient took 1.44 / 7.3 ms against 1.59 /
// 7.6 ms with 16 rows and 2.6 / 11.3 ms with 4 (each block adds its sums
// to grad_d once); 128 and 256 rows were no faster.
constexpr int64_t kRowBlock = 64;

template <typename T, int S_, int DM_>
void do_backward(const T* g, const T* w, const T* d, T* grad_w, T* partial_d,
                 int64_t out_channels, int64_t in_channels, int64_t cpg,
                 int64_t opg, int64_t chunks, int64_t S, int64_t DM) {
  const int64_t per_chunk = (out_channels + chunks - 1) / chunks;
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      T* part = partial_d != nullptr
                    ? partial_d + chunk * in_channels * S * DM
                    : nullptr;
      const int64_t o_end = std::min(out_channels, (chunk + 1) * per_chunk);
      int64_t o_begin = chunk * per_chunk;
      while (o_begin < o_end) {
        const int64_t group = o_begin / opg;
        const int64_t block_end =
            std::min({o_end, (group + 1) * opg, o_begin + kRowBlock});
        const int64_t ci0 = group * cpg;
        if (grad_w != nullptr) {
          for (int64_t o = o_begin; o < block_end; ++o) {
            for (int64_t c = 0; c < cpg; ++c) {
              const int64_t row = o * cpg + c;
              apply_channel_matrix<T, S_, DM_>(g + row * S,
                                               d + (ci0 + c) * S * DM,
                                               grad_w + row * DM, S, DM);
            }
          }
        }
        if (part != nullptr) {
          for (int64_t c = 0; c < cpg; ++c) {
            const int64_t row = o_begin * cpg + c;
            do_grad_depthwise_block<T, S_, DM_>(
                g + row * S, w + row * DM, block_end - o_begin, cpg * S,
                cpg * DM, part + (ci0 + c) * S * DM, S, DM);
          }
        }
        o_begin = block_end;
      }
    }
  });
}

void check_inputs(const std::vector<torch::Tensor>& tensors) {
  const auto dtype = tensors[0].scalar_type();
  for (const auto& t : tensors) {
    TORCH_CHECK(t.device().is_cpu(), "mmconvplug compose kernels: CPU only");
    TORCH_CHECK(t.is_contiguous(), "mmconvplug compose kernels: ",
                "contiguous tensors only");
    TORCH_CHECK(t.scalar_type() == dtype, "mmconvplug compose kernels: ",
                "one dtype for every tensor");
  }
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble,
              "mmconvplug compose kernels: float32 or float64 only");
}

// weight (O, cpg, DM), depthwise (I, S, DM) -> kernel (O, cpg, S)
torch::Tensor do_compose_forward(torch::Tensor weight, torch::Tensor depthwise,
                                 int64_t groups) {
  check_inputs({weight, depthwise});
  const int64_t O = weight.size(0), cpg = weight.size(1), DM = weight.size(2);
  const int64_t I = depthwise.size(0), S = depthwise.size(1);
  TORCH_CHECK(depthwise.size(2) == DM && I == cpg * groups && O % groups == 0,
              "do_compose_forward: shapes do not match");
  const int64_t opg = O / groups;
  auto dt = depthwise.transpose(1, 2).contiguous();
  auto kernel = torch::empty({O, cpg, S}, weight.options());
  AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "do_compose_forward", [&] {
    if (S == 9 && DM == 9) {
      do_forward<scalar_t, 9, 9>(weight.data_ptr<scalar_t>(),
                                 dt.data_ptr<scalar_t>(),
                                 kernel.data_ptr<scalar_t>(), O, cpg, opg, S,
                                 DM);
    } else {
      do_forward<scalar_t, 0, 0>(weight.data_ptr<scalar_t>(),
                                 dt.data_ptr<scalar_t>(),
                                 kernel.data_ptr<scalar_t>(), O, cpg, opg, S,
                                 DM);
    }
  });
  return kernel;
}

// -> [grad_weight or undefined, grad_depthwise or undefined]
std::vector<torch::Tensor> do_compose_backward(torch::Tensor grad_kernel,
                                               torch::Tensor weight,
                                               torch::Tensor depthwise,
                                               int64_t groups, bool need_weight,
                                               bool need_depthwise) {
  check_inputs({grad_kernel, weight, depthwise});
  const int64_t O = weight.size(0), cpg = weight.size(1), DM = weight.size(2);
  const int64_t I = depthwise.size(0), S = depthwise.size(1);
  TORCH_CHECK(grad_kernel.size(0) == O && grad_kernel.size(1) == cpg &&
                  grad_kernel.size(2) == S && I == cpg * groups,
              "do_compose_backward: shapes do not match");
  const int64_t opg = O / groups;
  // Fixed chunks for grad_depthwise's partial sums: at most one per thread,
  // and none with less than kParallelWork multiply-adds per gradient.
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(at::get_num_threads(),
                           (O * cpg * S * DM) / kParallelWork));
  torch::Tensor grad_weight, partial_depthwise;
  if (need_weight) grad_weight = torch::empty_like(weight);
  if (need_depthwise) {
    partial_depthwise = torch::zeros({chunks, I, S, DM}, weight.options());
  }
  AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "do_compose_backward", [&] {
    scalar_t* gw = need_weight ? grad_weight.data_ptr<scalar_t>() : nullptr;
    scalar_t* pd =
        need_depthwise ? partial_depthwise.data_ptr<scalar_t>() : nullptr;
    if (S == 9 && DM == 9) {
      do_backward<scalar_t, 9, 9>(grad_kernel.data_ptr<scalar_t>(),
                                  weight.data_ptr<scalar_t>(),
                                  depthwise.data_ptr<scalar_t>(), gw, pd, O,
                                  I, cpg, opg, chunks, S, DM);
    } else {
      do_backward<scalar_t, 0, 0>(grad_kernel.data_ptr<scalar_t>(),
                                  weight.data_ptr<scalar_t>(),
                                  depthwise.data_ptr<scalar_t>(), gw, pd, O,
                                  I, cpg, opg, chunks, S, DM);
    }
  });
  torch::Tensor grad_depthwise;
  if (need_depthwise) {
    grad_depthwise = chunks == 1 ? partial_depthwise[0]
                                 : partial_depthwise.sum(0);
  }
  return {grad_weight, grad_depthwise};
}

// ---------------------------------------------------------------- RefConv
// One basis kernel per refocusing group (the official default for a dense
// conv): kernel[n] = basis[n] + corr(basis[n], map[n]), a "same"
// cross-correlation with zero padding of each (KH x KW) basis kernel with
// its own (MH x MW) map. basis: (N, KH, KW); map: (N, MH, MW).

template <typename T, int KH_, int KW_, int MH_, int MW_>
void refocus_forward_impl(const T* basis, const T* map, T* out, int64_t N,
                          int64_t kh_rt, int64_t kw_rt, int64_t mh_rt,
                          int64_t mw_rt) {
  const int64_t KH = KH_ > 0 ? KH_ : kh_rt, KW = KW_ > 0 ? KW_ : kw_rt;
  const int64_t MH = MH_ > 0 ? MH_ : mh_rt, MW = MW_ > 0 ? MW_ : mw_rt;
  const int64_t ph = MH / 2, pw = MW / 2;
  const int64_t grain =
      std::max<int64_t>(1, kParallelWork / (KH * KW * MH * MW));
  at::parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const T* b = basis + n * KH * KW;
      const T* m = map + n * MH * MW;
      T* y = out + n * KH * KW;
      for (int64_t r = 0; r < KH; ++r) {
        for (int64_t c = 0; c < KW; ++c) {
          T acc = b[r * KW + c];
          for (int64_t a = 0; a < MH; ++a) {
            const int64_t rr = r + a - ph;
            if (rr < 0 || rr >= KH) continue;
            for (int64_t e = 0; e < MW; ++e) {
              const int64_t cc = c + e - pw;
              if (cc < 0 || cc >= KW) continue;
              acc += m[a * MW + e] * b[rr * KW + cc];
            }
          }
          y[r * KW + c] = acc;
        }
      }
    }
  });
}

// grad_map[n, a, e] = sum_{r, c} grad[n, r, c] * basis[n, r + a - ph, c + e - pw]
template <typename T, int KH_, int KW_, int MH_, int MW_>
void refocus_backward_impl(const T* grad, const T* basis, T* grad_map,
                           int64_t N, int64_t kh_rt, int64_t kw_rt,
                           int64_t mh_rt, int64_t mw_rt) {
  const int64_t KH = KH_ > 0 ? KH_ : kh_rt, KW = KW_ > 0 ? KW_ : kw_rt;
  const int64_t MH = MH_ > 0 ? MH_ : mh_rt, MW = MW_ > 0 ? MW_ : mw_rt;
  const int64_t ph = MH / 2, pw = MW / 2;
  const int64_t grain =
      std::max<int64_t>(1, kParallelWork / (KH * KW * MH * MW));
  at::parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const T* g = grad + n * KH * KW;
      const T* b = basis + n * KH * KW;
      T* gm = grad_map + n * MH * MW;
      for (int64_t a = 0; a < MH; ++a) {
        for (int64_t e = 0; e < MW; ++e) {
          T acc = 0;
          for (int64_t r = 0; r < KH; ++r) {
            const int64_t rr = r + a - ph;
            if (rr < 0 || rr >= KH) continue;
            for (int64_t c = 0; c < KW; ++c) {
              const int64_t cc = c + e - pw;
              if (cc < 0 || cc >= KW) continue;
              acc += g[r * KW + c] * b[rr * KW + cc];
            }
          }
          gm[a * MW + e] = acc;
        }
      }
    }
  });
}

// basis (N, KH, KW), map (N, MH, MW) -> refocused kernel (N, KH, KW)
torch::Tensor refocus_forward(torch::Tensor basis, torch::Tensor map) {
  check_inputs({basis, map});
  TORCH_CHECK(basis.dim() == 3 && map.dim() == 3 &&
                  basis.size(0) == map.size(0),
              "refocus_forward: shapes do not match");
  const int64_t N = basis.size(0), KH = basis.size(1), KW = basis.size(2);
  const int64_t MH = map.size(1), MW = map.size(2);
  auto out = torch::empty_like(basis);
  AT_DISPATCH_FLOATING_TYPES(basis.scalar_type(), "refocus_forward", [&] {
    if (KH == 3 && KW == 3 && MH == 3 && MW == 3) {
      refocus_forward_impl<scalar_t, 3, 3, 3, 3>(
          basis.data_ptr<scalar_t>(), map.data_ptr<scalar_t>(),
          out.data_ptr<scalar_t>(), N, KH, KW, MH, MW);
    } else {
      refocus_forward_impl<scalar_t, 0, 0, 0, 0>(
          basis.data_ptr<scalar_t>(), map.data_ptr<scalar_t>(),
          out.data_ptr<scalar_t>(), N, KH, KW, MH, MW);
    }
  });
  return out;
}

// grad (N, KH, KW), basis (N, KH, KW), map sizes -> grad_map (N, MH, MW)
torch::Tensor refocus_backward(torch::Tensor grad, torch::Tensor basis,
                               int64_t MH, int64_t MW) {
  check_inputs({grad, basis});
  TORCH_CHECK(grad.sizes() == basis.sizes() && basis.dim() == 3,
              "refocus_backward: shapes do not match");
  const int64_t N = basis.size(0), KH = basis.size(1), KW = basis.size(2);
  auto grad_map = torch::empty({N, MH, MW}, basis.options());
  AT_DISPATCH_FLOATING_TYPES(basis.scalar_type(), "refocus_backward", [&] {
    if (KH == 3 && KW == 3 && MH == 3 && MW == 3) {
      refocus_backward_impl<scalar_t, 3, 3, 3, 3>(
          grad.data_ptr<scalar_t>(), basis.data_ptr<scalar_t>(),
          grad_map.data_ptr<scalar_t>(), N, KH, KW, MH, MW);
    } else {
      refocus_backward_impl<scalar_t, 0, 0, 0, 0>(
          grad.data_ptr<scalar_t>(), basis.data_ptr<scalar_t>(),
          grad_map.data_ptr<scalar_t>(), N, KH, KW, MH, MW);
    }
  });
  return grad_map;
}

// --------------------------------------------------------------- CondConv
// The per-example kernels of a CondConv layer: out[n, j] = sum_e r[n, e] *
// W[e, j], routing r (N, E), experts W (E, K), K = the kernel's numel. A
// GEMM with an inner size of E (4-32) and two rows or a few: MKL's threads
// share it out poorly (measured: 2 threads about half the memory
// bandwidth); this reads W once and writes out once, a block of kMixBlock
// columns at a time (the block of W stays in cache across n), kCols
// columns of a row summed over e in registers.
constexpr int64_t kMixBlock = 256;
constexpr int kCols = 32;

// dst[0:len] = sum_i coef[i * coef_stride] * src[i * src_stride + 0:len]
// over i < count (count >= 1), kCols columns at a time in registers.
template <typename T>
inline void weighted_row_sum(const T* __restrict__ coef, int64_t coef_stride,
                             const T* __restrict__ src, int64_t src_stride,
                             int64_t count, T* __restrict__ dst,
                             int64_t len) {
  int64_t j = 0;
  for (; j + kCols <= len; j += kCols) {
    T acc[kCols];
    const T c0 = coef[0];
    for (int v = 0; v < kCols; ++v) acc[v] = c0 * src[j + v];
    for (int64_t i = 1; i < count; ++i) {
      const T ci = coef[i * coef_stride];
      const T* row = src + i * src_stride + j;
      for (int v = 0; v < kCols; ++v) acc[v] += ci * row[v];
    }
    for (int v = 0; v < kCols; ++v) dst[j + v] = acc[v];
  }
  for (; j < len; ++j) {
    T acc = coef[0] * src[j];
    for (int64_t i = 1; i < count; ++i) {
      acc += coef[i * coef_stride] * src[i * src_stride + j];
    }
    dst[j] = acc;
  }
}

template <typename T>
void expert_mix_forward_impl(const T* r, const T* w, T* out, int64_t N,
                             int64_t E, int64_t K) {
  const int64_t blocks = (K + kMixBlock - 1) / kMixBlock;
  const int64_t grain =
      std::max<int64_t>(1, kParallelWork / (N * E * kMixBlock));
  at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int64_t j0 = block * kMixBlock;
      const int64_t len = std::min(kMixBlock, K - j0);
      for (int64_t n = 0; n < N; ++n) {
        weighted_row_sum(r + n * E, 1, w + j0, K, E, out + n * K + j0, len);
      }
    }
  });
}

// part[n * E + e] += sum_j g[n, j] * w[e, j] over one block of `len`
// columns: kDotRows experts at a time, each in kLanes partial sums (a
// vectorisable reduction without reassociating floating-point maths,
// with enough independent sums to hide the multiply-add latency), added
// in a fixed order.
constexpr int kLanes = 16;
constexpr int kDotRows = 4;

template <typename T, int ROWS>
inline void dot_rows(const T* __restrict__ g, const T* __restrict__ w,
                     int64_t K, int64_t len, T* __restrict__ part) {
  T acc[ROWS][kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    for (int e = 0; e < ROWS; ++e) {
      const T* we = w + e * K + j;
      for (int l = 0; l < kLanes; ++l) acc[e][l] += g[j + l] * we[l];
    }
  }
  for (; j < len; ++j) {
    for (int e = 0; e < ROWS; ++e) acc[e][j % kLanes] += g[j] * w[e * K + j];
  }
  for (int e = 0; e < ROWS; ++e) {
    T total = 0;
    for (int l = 0; l < kLanes; ++l) total += acc[e][l];
    part[e] += total;
  }
}

// grad_w[e, j] = sum_n r[n, e] * g[n, j]; grad_r[n, e] = sum_j g[n, j] *
// W[e, j]. One pass over g and W: column chunks in parallel, each writing
// its columns of grad_w and its partial grad_r into partial_r[chunk]
// (N, E), which the caller adds up in chunk order. Either output may be
// null (not needed).
template <typename T>
void expert_mix_backward_impl(const T* g, const T* r, const T* w, T* grad_w,
                              T* partial_r, int64_t N, int64_t E, int64_t K,
                              int64_t chunks) {
  const int64_t per_chunk =
      ((K + chunks - 1) / chunks + kMixBlock - 1) / kMixBlock * kMixBlock;
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      T* part = partial_r != nullptr ? partial_r + chunk * N * E : nullptr;
      const int64_t c_end = std::min(K, (chunk + 1) * per_chunk);
      for (int64_t j0 = chunk * per_chunk; j0 < c_end; j0 += kMixBlock) {
        const int64_t len = std::min(kMixBlock, c_end - j0);
        if (grad_w != nullptr) {
          for (int64_t e = 0; e < E; ++e) {
            weighted_row_sum(r + e, E, g + j0, K, N, grad_w + e * K + j0,
                             len);
          }
        }
        if (part == nullptr) continue;
        for (int64_t n = 0; n < N; ++n) {
          const T* gn = g + n * K + j0;
          T* pn = part + n * E;
          int64_t e = 0;
          for (; e + kDotRows <= E; e += kDotRows) {
            dot_rows<T, kDotRows>(gn, w + e * K + j0, K, len, pn + e);
          }
          for (; e < E; ++e) {
            dot_rows<T, 1>(gn, w + e * K + j0, K, len, pn + e);
          }
        }
      }
    }
  });
}

// routing (N, E), experts (E, K) -> (N, K)
torch::Tensor expert_mix_forward(torch::Tensor routing, torch::Tensor experts) {
  check_inputs({routing, experts});
  TORCH_CHECK(routing.dim() == 2 && experts.dim() == 2 &&
                  routing.size(1) == experts.size(0),
              "expert_mix_forward: shapes do not match");
  const int64_t N = routing.size(0), E = experts.size(0), K = experts.size(1);
  auto out = torch::empty({N, K}, experts.options());
  if (N == 0 || K == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(experts.scalar_type(), "expert_mix_forward", [&] {
    expert_mix_forward_impl<scalar_t>(routing.data_ptr<scalar_t>(),
                                      experts.data_ptr<scalar_t>(),
                                      out.data_ptr<scalar_t>(), N, E, K);
  });
  return out;
}

// grad (N, K), routing (N, E), experts (E, K) ->
// [grad_experts or undefined, grad_routing or undefined]
std::vector<torch::Tensor> expert_mix_backward(torch::Tensor grad,
                                               torch::Tensor routing,
                                               torch::Tensor experts,
                                               bool need_experts,
                                               bool need_routing) {
  check_inputs({grad, routing, experts});
  const int64_t N = routing.size(0), E = experts.size(0), K = experts.size(1);
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == N && grad.size(1) == K &&
                  routing.size(1) == E,
              "expert_mix_backward: shapes do not match");
  // Fixed chunks for grad_routing's partial sums: at most one per thread,
  // none with less than kParallelWork multiply-adds.
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(at::get_num_threads(),
                           (N * E * K) / kParallelWork));
  torch::Tensor grad_experts, partial_routing;
  if (need_experts) grad_experts = torch::empty_like(experts);
  if (need_routing) {
    partial_routing = torch::zeros({chunks, N, E}, experts.options());
  }
  if (N > 0 && K > 0) {
    AT_DISPATCH_FLOATING_TYPES(experts.scalar_type(), "expert_mix_backward",
                               [&] {
      expert_mix_backward_impl<scalar_t>(
          grad.data_ptr<scalar_t>(), routing.data_ptr<scalar_t>(),
          experts.data_ptr<scalar_t>(),
          need_experts ? grad_experts.data_ptr<scalar_t>() : nullptr,
          need_routing ? partial_routing.data_ptr<scalar_t>() : nullptr, N, E,
          K, chunks);
    });
  } else if (need_experts) {
    grad_experts.zero_();
  }
  torch::Tensor grad_routing;
  if (need_routing) {
    grad_routing = chunks == 1 ? partial_routing[0] : partial_routing.sum(0);
  }
  return {grad_experts, grad_routing};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("do_compose_forward", &do_compose_forward,
        "DO-Conv kernel composition (CPU)");
  m.def("do_compose_backward", &do_compose_backward,
        "DO-Conv kernel composition, backward (CPU)");
  m.def("refocus_forward", &refocus_forward,
        "RefConv refocusing, one kernel per group (CPU)");
  m.def("refocus_backward", &refocus_backward,
        "RefConv refocusing, gradient of the map (CPU)");
  m.def("expert_mix_forward", &expert_mix_forward,
        "CondConv per-example kernels from the experts (CPU)");
  m.def("expert_mix_backward", &expert_mix_backward,
        "CondConv per-example kernels, backward (CPU)");
}
