// The emulator's runtime (see include/bk_cuda_emu.h): the fiber scheduler behind a launch, the
// barriers and warp exchanges, the runtime API calls, and a small Python module to configure
// it (schedule, device facts) and to see which kernels ran.
#include <c10/core/CPUAllocator.h>
#include <torch/extension.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <unordered_map>

#include <algorithm>
#include <array>
#include <exception>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <vector>

#include "bk_cuda_emu.h"

// Fiber switch. On x86-64 a hand-written one (callee-saved registers, the SSE / x87 control words
// and the stack pointer), since glibc's swapcontext also saves the signal mask with a system call
// on every switch, which made the emulator about 3x slower; elsewhere ucontext.
#if defined(__x86_64__) && defined(__ELF__)
#define BK_EMU_ASM_SWITCH 1
extern "C" void bk_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .p2align 4
  .globl bk_emu_switch
  .hidden bk_emu_switch
  .type bk_emu_switch, @function
bk_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size bk_emu_switch, .-bk_emu_switch
)");
#else
#define BK_EMU_ASM_SWITCH 0
#endif

namespace bk_emu {

uint3 g_thread_idx{0, 0, 0}, g_block_idx{0, 0, 0};
dim3 g_block_dim, g_grid_dim;

namespace {

constexpr size_t kStackBytes = 256 * 1024, kGuardBytes = 4096;

struct Fiber {
  ucontext_t ctx;   // without the asm switch
  void* sp = nullptr;  // with it: the saved stack pointer
  uint3 tid;
  bool done = false;
  int wait = 0;  // 0 runnable, 1 at the block barrier, 2 at its warp's barrier
  uint64_t wait_gen = 0;
};

struct Config {
  int schedule = 0;  // 0: threads in order, 1: in reverse order, 2: shuffled (seeded), 3: warp-greedy
  uint64_t seed = 0;
  int sms = 132;     // an H100 SXM
  int cc_major = 9;
  int max_grid_yz = 65535;  // the device's grid y / z limit (a test may lower it)
};

struct State {
  Config cfg;
  std::vector<std::string> launches;
  std::mutex mutex;  // one launch at a time (autograd may call from another thread)
};

State& state() {
  static State s;
  return s;
}

// Per host thread, as CUDA keeps them.
thread_local cudaError_t t_last_error = cudaSuccess;
thread_local std::string t_last_message;

// A fiber stack with an inaccessible page below it: an overflow faults instead of overwriting the heap.
struct Stack {
  char* base = nullptr;  // the guard page; the stack is the kStackBytes above it
  Stack() {
    void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base = static_cast<char*>(p);
    mprotect(base, kGuardBytes, PROT_NONE);
  }
  ~Stack() { munmap(base, kStackBytes + kGuardBytes); }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  char* bottom() const { return base + kGuardBytes; }
};

// The block being run.
struct Block {
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<Stack>> stacks;
  int nthreads = 0, current = 0;
  int block_arrived = 0;
  uint64_t block_gen = 0;
  std::vector<int> warp_arrived, warp_size;
  std::vector<uint64_t> warp_gen;
  std::vector<std::array<unsigned char, 16>> slots;
  ucontext_t sched;
  void* sched_sp = nullptr;
  const std::function<void()>* body = nullptr;
  std::exception_ptr error;
};
Block* g_block = nullptr;

struct EmuError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void to_scheduler(Fiber& f) {
  Block& b = *g_block;
#if BK_EMU_ASM_SWITCH
  bk_emu_switch(&f.sp, b.sched_sp);
#else
  swapcontext(&f.ctx, &b.sched);
#endif
}

void to_fiber(Fiber& f) {
  Block& b = *g_block;
#if BK_EMU_ASM_SWITCH
  bk_emu_switch(&b.sched_sp, f.sp);
#else
  swapcontext(&b.sched, &f.ctx);
#endif
}

void fiber_main() {
  Block& b = *g_block;
  try {
    (*b.body)();
  } catch (...) {
    if (!b.error) b.error = std::current_exception();
  }
  Fiber& f = b.fibers[b.current];
  f.done = true;
  to_scheduler(f);  // never resumed
  std::abort();
}

// A fresh fiber whose first switch-in starts fiber_main on its own stack.
void start_fiber(Fiber& f, char* stack, Block& b) {
#if BK_EMU_ASM_SWITCH
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + kStackBytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                                    // fiber_main's return address (it never returns)
  *--sp = reinterpret_cast<void*>(&fiber_main);       // where bk_emu_switch's ret goes
  for (int i = 0; i < 6; ++i) *--sp = nullptr;        // rbp, rbx, r12-r15
  uint32_t csr[2];
  asm volatile("stmxcsr %0" : "=m"(csr[0]));
  asm volatile("fnstcw %0" : "=m"(csr[1]));
  *--sp = nullptr;
  std::memcpy(sp, csr, 8);                            // mxcsr, x87 control word
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stack;
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = &b.sched;
  makecontext(&f.ctx, fiber_main, 0);
#endif
}

void yield_to_scheduler() {
  Block& b = *g_block;
  to_scheduler(b.fibers[b.current]);
  if (b.error) throw EmuError("another thread of the block failed");
}

std::string where() {
  return "block (" + std::to_string(g_block_idx.x) + ", " + std::to_string(g_block_idx.y) + ", " +
         std::to_string(g_block_idx.z) + "), thread (" + std::to_string(g_thread_idx.x) + ", " +
         std::to_string(g_thread_idx.y) + ", " + std::to_string(g_thread_idx.z) + ")";
}

}  // namespace

std::unordered_map<std::string, unsigned>& launch_bounds() {
  static std::unordered_map<std::string, unsigned> m;
  return m;
}

bool register_launch_bounds(const char* kernel, unsigned max_threads) {
  launch_bounds()[kernel] = max_threads;
  return true;
}

void sync_block() {
  Block& b = *g_block;
  Fiber& f = b.fibers[b.current];
  if (++b.block_arrived == b.nthreads) {  // the last one releases the others
    b.block_arrived = 0;
    ++b.block_gen;
    return;
  }
  f.wait = 1;
  f.wait_gen = b.block_gen;
  yield_to_scheduler();
}

void warp_exchange(const void* v, void* out, size_t bytes, unsigned mask, int offset, int width) {
  Block& b = *g_block;
  const int tid = b.current, warp = tid / 32, lane = tid % 32;
  if (bytes > 16) throw EmuError("shuffle of a value wider than 16 bytes");
  if (width <= 0 || width > 32 || (width & (width - 1))) throw EmuError("shuffle width must be a power of 2 <= 32");
  const unsigned full = b.warp_size[warp] == 32 ? 0xffffffffu : ((1u << b.warp_size[warp]) - 1u);
  if ((mask & full) != full)
    throw EmuError("__shfl_*_sync with a partial mask: the emulator models full-warp shuffles only (" + where() + ")");
  std::memcpy(b.slots[tid].data(), v, bytes);
  auto warp_barrier = [&] {
    Fiber& f = b.fibers[b.current];
    if (++b.warp_arrived[warp] == b.warp_size[warp]) {
      b.warp_arrived[warp] = 0;
      ++b.warp_gen[warp];
      return;
    }
    f.wait = 2;
    f.wait_gen = b.warp_gen[warp];
    yield_to_scheduler();
  };
  warp_barrier();  // everyone has published
  const int seg = lane / width * width, src = lane + offset;
  const int src_lane = (src >= seg && src < seg + width && src < b.warp_size[warp]) ? src : lane;
  std::memcpy(out, b.slots[warp * 32 + src_lane].data(), bytes);
  warp_barrier();  // everyone has read before the slots are reused
}

void warp_uniform(const char* what, uint64_t a, uint64_t b) {
  const uint64_t mine[2] = {a, b};
  uint64_t lane0[2];
  warp_exchange(mine, lane0, sizeof(mine), 0xffffffffu, -static_cast<int>(g_block->current % 32), 32);
  if (lane0[0] != a || lane0[1] != b)
    throw EmuError(std::string(what) + ": the lanes of a warp disagree on its arguments (" + where() + ")");
}

void trap() { throw EmuError("__trap() reached (" + where() + ")"); }

namespace {
uint64_t g_block_epoch = 0;                          // one per block run
std::unordered_map<const void*, uint64_t> g_shared;  // __shared__ variable -> epoch it was poisoned in
}  // namespace

void poison_shared(void* p, size_t bytes) {
  uint64_t& e = g_shared[p];
  if (e == g_block_epoch) return;  // already done by an earlier thread of this block
  e = g_block_epoch;
  std::memset(p, 0xff, bytes);  // NaN in every float / double, -1 in every integer
}
void fail(const std::string& message) { throw EmuError(message + " (" + where() + ")"); }

void run_grid(const char* pretty, const LaunchCfg& cfg, const std::function<void()>& body) {
  State& s = state();
  const std::lock_guard<std::mutex> lock(s.mutex);
  std::string name = pretty;
  const auto k = name.find("K = ");
  if (k != std::string::npos) name = name.substr(k + 4, name.rfind(']') - k - 4);
  s.launches.push_back(name);
  const dim3 g = cfg.grid, bd = cfg.block;
  const uint64_t threads = uint64_t(bd.x) * bd.y * bd.z;
  // The limits of every GPU since sm_30 (a bad configuration fails the launch, it does not run).
  const unsigned yz = static_cast<unsigned>(s.cfg.max_grid_yz);
  std::string base = name.substr(0, name.find('<'));
  base = base.substr(base.rfind(':') + 1);  // the kernel's own name (npos + 1 = 0: no namespace)
  const auto bound = launch_bounds().find(base);
  if (bound != launch_bounds().end() && threads > bound->second) {  // more threads than compiled for
    t_last_error = cudaErrorLaunchOutOfResources;
    t_last_message = "too many resources requested for launch: " + name + " has __launch_bounds__(" +
                     std::to_string(bound->second) + "), launched with " + std::to_string(threads) + " threads";
    return;
  }
  if (threads == 0 || threads > 1024 || bd.z > 64 || g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u ||
      g.y > yz || g.z > yz || cfg.smem > 48 * 1024) {
    t_last_error = cudaErrorInvalidConfiguration;
    t_last_message = "invalid configuration argument: " + name + " grid (" + std::to_string(g.x) + ", " +
                     std::to_string(g.y) + ", " + std::to_string(g.z) + ") block (" + std::to_string(bd.x) + ", " +
                     std::to_string(bd.y) + ", " + std::to_string(bd.z) + ")";
    return;
  }
  Block b;
  b.nthreads = static_cast<int>(threads);
  b.fibers.resize(b.nthreads);
  b.stacks.resize(b.nthreads);
  for (auto& st : b.stacks) st.reset(new Stack);
  const int nwarps = (b.nthreads + 31) / 32;
  b.warp_arrived.assign(nwarps, 0);
  b.warp_gen.assign(nwarps, 0);
  b.warp_size.resize(nwarps);
  for (int w = 0; w < nwarps; ++w) b.warp_size[w] = std::min(32, b.nthreads - 32 * w);
  b.slots.resize(b.nthreads);
  b.body = &body;
  std::vector<int> order(b.nthreads);
  for (int i = 0; i < b.nthreads; ++i) order[i] = i;
  if (s.cfg.schedule == 1) std::reverse(order.begin(), order.end());
  std::mt19937_64 rng(s.cfg.seed);

  g_block = &b;
  g_grid_dim = g;
  g_block_dim = bd;
  try {
    for (unsigned bz = 0; bz < g.z; ++bz)
      for (unsigned by = 0; by < g.y; ++by)
        for (unsigned bx = 0; bx < g.x; ++bx) {
          g_block_idx = {bx, by, bz};
          b.block_arrived = 0;
          ++g_block_epoch;  // fresh (poisoned) shared memory for this block
          for (int i = 0; i < b.nthreads; ++i) {
            Fiber& f = b.fibers[i];
            f = Fiber{};
            f.tid = {unsigned(i) % bd.x, unsigned(i) / bd.x % bd.y, unsigned(i) / (bd.x * bd.y)};
            start_fiber(f, b.stacks[i]->bottom(), b);
          }
          // Resumes thread i if it can run; false if it is done or waits at a barrier not yet released.
          auto resume = [&](int i) {
            Fiber& f = b.fibers[i];
            if (f.done) return false;
            if (f.wait == 1 && f.wait_gen == b.block_gen) return false;
            if (f.wait == 2 && f.wait_gen == b.warp_gen[i / 32]) return false;
            f.wait = 0;
            b.current = i;
            g_thread_idx = f.tid;
            to_fiber(f);
            if (b.error) std::rethrow_exception(b.error);
            return true;
          };
          for (;;) {
            bool progressed = false;
            if (s.cfg.schedule == 3) {
              // Warp-greedy: the last warp first, each run as far as it can go (through its own
              // shuffles) before the next one starts: a warp races ahead of the others.
              for (int w = nwarps - 1; w >= 0; --w) {
                for (bool again = true; again;) {
                  again = false;
                  for (int i = 32 * w; i < 32 * w + b.warp_size[w]; ++i) again |= resume(i);
                  progressed |= again;
                }
              }
            } else {
              if (s.cfg.schedule == 2) std::shuffle(order.begin(), order.end(), rng);  // a new order every pass
              for (int i : order) progressed |= resume(i);
            }
            bool alive = false;
            for (const Fiber& f : b.fibers) alive |= !f.done;
            if (!alive) break;
            if (!progressed) {
              int at_block = 0, at_warp = 0, exited = 0;
              for (const Fiber& f : b.fibers) (f.done ? exited : f.wait == 1 ? at_block : at_warp) += 1;
              throw EmuError("deadlock in block (" + std::to_string(bx) + ", " + std::to_string(by) + ", " +
                             std::to_string(bz) + "): " + std::to_string(at_block) + " threads wait at __syncthreads, " +
                             std::to_string(at_warp) + " at a warp shuffle, " + std::to_string(exited) +
                             " have exited (a barrier that not every thread of the block / warp reaches)");
            }
          }
        }
  } catch (const std::exception& e) {
    t_last_error = cudaErrorLaunchFailure;
    t_last_message = "unspecified launch failure in " + name + ": " + e.what();
  }
  g_block = nullptr;
}

}  // namespace bk_emu

cudaError_t cudaGetLastError() {
  const cudaError_t e = bk_emu::t_last_error;
  bk_emu::t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return bk_emu::t_last_error; }
const char* cudaGetErrorString(cudaError_t err) {
  if (err == cudaSuccess) return "no error";
  const std::string& m = bk_emu::t_last_message;
  return m.empty() ? "emulated CUDA error" : m.c_str();
}
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  const auto& c = bk_emu::state().cfg;
  if (attr == cudaDevAttrMultiProcessorCount) *value = c.sms;
  else if (attr == cudaDevAttrComputeCapabilityMajor) *value = c.cc_major;
  else if (attr == cudaDevAttrMaxGridDimY || attr == cudaDevAttrMaxGridDimZ) *value = c.max_grid_yz;
  else return cudaErrorInvalidValue;
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}

namespace bk_emu_selftest {  // selftest.cu
cudaError_t reverse(float* out, const float* in, int n, bool sync);
cudaError_t divergent_sync(float* out);
cudaError_t warp_sums(float* out, int blocks, int threads);
cudaError_t wmma_tile(float* c, const float* a, const float* b, bool convert);
cudaError_t launch_with(float* out, unsigned grid_y, unsigned threads);
cudaError_t misaligned_wmma(float* c, const float* a);
cudaError_t bounded(float* out, unsigned threads);
cudaError_t trap(float* out);
}  // namespace bk_emu_selftest

namespace {
// (result, "" or the launch error's message)
std::tuple<at::Tensor, std::string> selftest(const std::string& name, const at::Tensor& a, const at::Tensor& b,
                                             int64_t i0, int64_t i1) {
  namespace st = bk_emu_selftest;
  TORCH_CHECK(a.scalar_type() == at::kFloat && a.is_contiguous() && b.scalar_type() == at::kFloat && b.is_contiguous(),
              "selftest: float32 contiguous inputs");
  at::Tensor out = at::zeros({std::max<int64_t>(i0, 1) * 1024}, a.options());
  float* o = out.data_ptr<float>();
  cudaError_t err;
  if (name == "reverse") err = st::reverse(o, a.data_ptr<float>(), static_cast<int>(a.numel()), i0 != 0);
  else if (name == "divergent_sync") err = st::divergent_sync(o);
  else if (name == "warp_sums") err = st::warp_sums(o, static_cast<int>(i0), static_cast<int>(i1));
  else if (name == "wmma") err = st::wmma_tile(o, a.data_ptr<float>(), b.data_ptr<float>(), i0 != 0);
  else if (name == "launch_with") err = st::launch_with(o, static_cast<unsigned>(i0), static_cast<unsigned>(i1));
  else if (name == "trap") err = st::trap(o);
  else if (name == "misaligned_wmma") err = st::misaligned_wmma(o, a.data_ptr<float>());
  else if (name == "bounded") err = st::bounded(o, static_cast<unsigned>(i0));
  else TORCH_CHECK(false, "selftest: unknown test ", name);
  return {out, err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err))};
}
}  // namespace

namespace {
// Fills every new CPU allocation with 0xff bytes (NaN in float / double): an output element or an
// intermediate buffer that a kernel forgets to write shows up as NaN instead of a plausible zero.
// Each allocation also gets a guard zone after its end, checked when it is freed: a write past the
// end of an output is counted (guard_violations()).
constexpr size_t kAllocGuard = 512;
constexpr unsigned char kGuardByte = 0xa5;

struct Allocation {
  size_t bytes;
  c10::DeleterFnPtr base_free;
};
std::mutex g_alloc_mutex;
std::unordered_map<void*, Allocation> g_allocations;
std::vector<std::string> g_guard_violations;

void poison_free(void* p) {
  Allocation a;
  {
    const std::lock_guard<std::mutex> lock(g_alloc_mutex);
    auto it = g_allocations.find(p);
    if (it == g_allocations.end()) return;  // not ours (cannot happen: our DataPtrs only)
    a = it->second;
    g_allocations.erase(it);
    const unsigned char* guard = static_cast<unsigned char*>(p) + a.bytes;
    for (size_t i = 0; i < kAllocGuard; ++i)
      if (guard[i] != kGuardByte) {
        g_guard_violations.push_back("a write " + std::to_string(i) + " bytes past the end of a " +
                                     std::to_string(a.bytes) + "-byte tensor");
        break;
      }
  }
  a.base_free(p);
}

struct PoisonAllocator final : c10::Allocator {
  c10::Allocator* base = nullptr;
  c10::DataPtr allocate(size_t n) override {
    void* p = base->raw_allocate(n + kAllocGuard);
    std::memset(p, 0xff, n);
    std::memset(static_cast<char*>(p) + n, kGuardByte, kAllocGuard);
    {
      const std::lock_guard<std::mutex> lock(g_alloc_mutex);
      g_allocations[p] = {n, base->raw_deleter()};
    }
    return c10::DataPtr(p, p, &poison_free, c10::Device(c10::DeviceType::CPU));
  }
  c10::DeleterFnPtr raw_deleter() const override { return &poison_free; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
};
PoisonAllocator g_poison;

void poison_allocations(bool on) {
  // SetCPUAllocator ignores an allocator of lower priority than the current one: the top priority
  // both ways, so that switching works any number of times.
  constexpr uint8_t kPriority = 255;
  if (on) {
    if (c10::GetCPUAllocator() == &g_poison) return;
    g_poison.base = c10::GetCPUAllocator();
    c10::SetCPUAllocator(&g_poison, kPriority);
  } else if (c10::GetCPUAllocator() == &g_poison) {
    c10::SetCPUAllocator(g_poison.base, kPriority);
  }
  TORCH_CHECK((c10::GetCPUAllocator() == &g_poison) == on, "poison_allocations: torch kept another CPU allocator");
}

std::vector<std::string> take_guard_violations() {
  const std::lock_guard<std::mutex> lock(g_alloc_mutex);
  std::vector<std::string> v;
  v.swap(g_guard_violations);
  return v;
}
}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("poison_allocations", &poison_allocations,
        "on: every new CPU tensor's memory starts as 0xff bytes (NaN), so unwritten outputs show up, and "
        "ends in a guard zone checked when it is freed");
  m.def("take_guard_violations", &take_guard_violations,
        "writes past the end of tensors allocated while poisoning was on, found when they were freed");
  m.def("write_past_end", [](at::Tensor t, int64_t bytes) {
    std::memset(static_cast<char*>(t.data_ptr()) + t.nbytes(), 0, static_cast<size_t>(bytes));
  }, "self-test: write zeros just past the end of t's memory");
  m.def("selftest", &selftest, "run one of tests/cuda_emu/selftest.cu's kernels: (output, error message or '')");
  m.doc() = "beamkernels' CUDA kernels and glue, run by a CPU emulator (tests/cuda_emu)";
  m.def(
      "configure",
      [](int schedule, uint64_t seed, int sms, int cc_major, int max_grid_yz) {
        auto& c = bk_emu::state().cfg;
        c.schedule = schedule;
        c.seed = seed;
        c.sms = sms;
        c.cc_major = cc_major;
        c.max_grid_yz = max_grid_yz;
      },
      pybind11::arg("schedule") = 0, pybind11::arg("seed") = 0, pybind11::arg("sms") = 132,
      pybind11::arg("cc_major") = 9, pybind11::arg("max_grid_yz") = 65535,
      "schedule: 0 threads in order, 1 reversed, 2 shuffled anew at every pass (seeded), 3 warp-greedy (the "
      "last warp first, each run as far as it can); the emulated GPU's SM count, "
      "compute capability (major) and grid y / z limit");
  m.def(
      "launches",
      [] {
        auto& s = bk_emu::state();
        const std::lock_guard<std::mutex> lock(s.mutex);
        return s.launches;
      },
      "the kernels launched so far, in order");
  m.def("clear_launches", [] {
    auto& s = bk_emu::state();
    const std::lock_guard<std::mutex> lock(s.mutex);
    s.launches.clear();
  });
}
