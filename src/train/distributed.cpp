// c10d process group, launch environment and bucketed gradient all-reduce; see distributed.h.
#include "train/distributed.h"

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>

#include <ATen/Functions.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "core/error.h"

#if MMREF_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace mmref::train {

namespace {

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi) {
    throw UsageError(fmt::format("environment {}='{}': expected an integer in [{}, {}]", name, v, lo, hi));
  }
  return static_cast<int>(x);
}

// The first line of an exception's text (c10 errors carry a backtrace after it).
std::string first_line(const std::exception& e) {
  const auto* c10e = dynamic_cast<const c10::Error*>(&e);
  std::string s = c10e ? c10e->what_without_backtrace() : e.what();
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

DistEnv DistEnv::from_env() {
  DistEnv e;
  e.world = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  e.rank = env_int("RANK", 0, 0, 1 << 20);
  if (e.rank >= e.world) {
    throw UsageError(fmt::format("environment RANK={} is not below WORLD_SIZE={}", e.rank, e.world));
  }
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0, 1 << 20);
  e.local_world = env_int("LOCAL_WORLD_SIZE", e.world, 1, 1 << 20);
  if (const char* a = std::getenv("MASTER_ADDR"); a != nullptr && *a != '\0') e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  return e;
}

#if MMREF_HAVE_GLOO

struct ProcessGroup::Impl {
  DistEnv env;
  double timeout_s = 300;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::mutex mu;
  int64_t next_handle = 0;
  std::map<int64_t, c10::intrusive_ptr<c10d::Work>> pending;

  [[noreturn]] void fail(const char* what, const std::exception& e) const {
    throw Error(fmt::format(
        "data parallel, rank {} of {}: {} failed: {}. A peer process probably exited or stalled (timeout {} s); "
        "see the other ranks' errors",
        env.rank, env.world, what, first_line(e), timeout_s));
  }
};

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const DistEnv& env, double timeout_s) {
  auto impl = std::make_unique<Impl>();
  impl->env = env;
  impl->timeout_s = timeout_s;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<size_t>(env.world);
    so.waitWorkers = true;
    so.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world, opts);
  } catch (const std::exception& e) {
    throw Error(fmt::format(
        "data parallel, rank {} of {}: cannot join the process group at {}:{} within {} s: {}. Check that every "
        "rank started with the same MASTER_ADDR/MASTER_PORT/WORLD_SIZE and that the port is free",
        env.rank, env.world, env.master_addr, env.master_port, timeout_s, first_line(e)));
  }
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

void ProcessGroup::allreduce_sum(at::Tensor& t, const char* what) {
  try {
    std::vector<at::Tensor> v{t};
    impl_->pg->allreduce(v)->wait();
  } catch (const std::exception& e) {
    impl_->fail(what, e);
  }
}

int64_t ProcessGroup::allreduce_async(at::Tensor& t) {
  try {
    std::vector<at::Tensor> v{t};
    auto work = impl_->pg->allreduce(v);
    std::lock_guard<std::mutex> lock(impl_->mu);
    const int64_t h = impl_->next_handle++;
    impl_->pending.emplace(h, std::move(work));
    return h;
  } catch (const std::exception& e) {
    impl_->fail("gradient allreduce", e);
  }
}

void ProcessGroup::wait(int64_t handle, const char* what) {
  c10::intrusive_ptr<c10d::Work> work;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->pending.find(handle);
    if (it == impl_->pending.end()) MMREF_FAIL("internal: no pending collective {}", handle);
    work = std::move(it->second);
    impl_->pending.erase(it);
  }
  try {
    work->wait();
  } catch (const std::exception& e) {
    impl_->fail(what, e);
  }
}

void ProcessGroup::broadcast(std::vector<at::Tensor>& tensors, int root, const char* what) {
  try {
    for (auto& t : tensors) {  // Gloo broadcasts one tensor per call here (shapes differ)
      std::vector<at::Tensor> v{t};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      impl_->pg->broadcast(v, o)->wait();
    }
  } catch (const std::exception& e) {
    impl_->fail(what, e);
  }
}

void ProcessGroup::barrier(const char* what) {
  try {
    impl_->pg->barrier()->wait();
  } catch (const std::exception& e) {
    impl_->fail(what, e);
  }
}

std::string ProcessGroup::share_string(const std::string& key, const std::string& value_on_root, int root) {
  const std::string k = "mmref/" + key;
  try {
    if (impl_->env.rank == root) {
      impl_->store->set(k, std::vector<uint8_t>(value_on_root.begin(), value_on_root.end()));
      return value_on_root;
    }
    const std::vector<uint8_t> v = impl_->store->get(k);
    return std::string(v.begin(), v.end());
  } catch (const std::exception& e) {
    impl_->fail(("sharing '" + key + "'").c_str(), e);
  }
}

#else  // no Gloo headers in this build

struct ProcessGroup::Impl {
  DistEnv env;
  double timeout_s = 0;
};

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const DistEnv& env, double) {
  throw UsageError(fmt::format(
      "data parallel (WORLD_SIZE={}): this build of mmref has no Gloo (install libgloo-dev and rebuild)", env.world));
}
void ProcessGroup::allreduce_sum(at::Tensor&, const char*) {}
int64_t ProcessGroup::allreduce_async(at::Tensor&) { return 0; }
void ProcessGroup::wait(int64_t, const char*) {}
void ProcessGroup::broadcast(std::vector<at::Tensor>&, int, const char*) {}
void ProcessGroup::barrier(const char*) {}
std::string ProcessGroup::share_string(const std::string&, const std::string& v, int) { return v; }

#endif

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;
int ProcessGroup::rank() const { return impl_->env.rank; }
int ProcessGroup::world() const { return impl_->env.world; }
double ProcessGroup::timeout_s() const { return impl_->timeout_s; }

void rank0_first(ProcessGroup* pg, const std::function<void()>& fn) {
  if (pg == nullptr) return fn();
  if (pg->rank() == 0) fn();
  pg->barrier("waiting for rank 0 to prepare shared files");
  if (pg->rank() != 0) fn();
}

// ---- GradReducer ----

GradReducer::GradReducer(ProcessGroup& pg, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : pg_(pg), params_(std::move(params)) {
  const size_t n = params_.size();
  bucket_of_.assign(n, 0), offset_of_.assign(n, 0), got_.assign(n, false);
  // Reverse order: gradients of the last layers arrive first in backward.
  int64_t bytes = 0, numel = 0;
  std::vector<size_t> cur;
  auto close = [&] {
    if (cur.empty()) return;
    const at::Tensor& p0 = params_[cur.front()];
    Bucket b;
    b.flat = at::zeros({numel}, p0.options().requires_grad(false));
    b.params = cur;
    buckets_.push_back(std::move(b));
    cur.clear(), bytes = 0, numel = 0;
  };
  for (size_t k = n; k-- > 0;) {
    const at::Tensor& p = params_[k];
    if (!cur.empty()) {
      const at::Tensor& q = params_[cur.front()];
      if (p.scalar_type() != q.scalar_type() || p.device() != q.device() || bytes >= bucket_bytes) close();
    }
    bucket_of_[k] = buckets_.size();
    offset_of_[k] = static_cast<size_t>(numel);
    cur.push_back(k);
    numel += p.numel();
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  close();
  for (size_t k = 0; k < n; ++k) {
    hooks_.push_back(params_[k].register_hook([this, k](const at::Tensor& g) { on_grad(k, g); }));
  }
}

GradReducer::~GradReducer() {
  for (size_t k = 0; k < hooks_.size(); ++k) {
    try {
      params_[k].remove_hook(hooks_[k]);
    } catch (...) {
    }
  }
}

void GradReducer::prepare(bool sync) {
  sync_ = sync;
  in_backward_ = sync;
  if (!sync) return;
  next_launch_ = 0;
  overlapped_ = 0;
  std::fill(got_.begin(), got_.end(), false);
  for (auto& b : buckets_) b.ready = 0, b.handle = -1;
}

void GradReducer::on_grad(size_t i, const at::Tensor& g) {
  if (!sync_ || got_[i]) return;
  const at::Tensor& p = params_[i];
  Bucket& b = buckets_[bucket_of_[i]];
  at::Tensor slot = b.flat.narrow(0, static_cast<int64_t>(offset_of_[i]), p.numel()).view_as(p);
  // .grad holds the earlier micro-batches' sum (accumulation); AccumulateGrad adds g after this hook.
  if (p.grad().defined()) {
    at::add_out(slot, p.grad(), g);
  } else {
    slot.copy_(g);
  }
  got_[i] = true;
  if (++b.ready == b.params.size()) launch_ready();
}

void GradReducer::launch(Bucket& b) {
  b.handle = pg_.allreduce_async(b.flat);
  if (in_backward_) ++overlapped_;
}

void GradReducer::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
    launch(buckets_[next_launch_++]);
  }
}

void GradReducer::finish() {
  in_backward_ = false;
  // Parameters without a gradient in this backward (unused branches): their current .grad, or zeros.
  for (; next_launch_ < buckets_.size(); ++next_launch_) {
    Bucket& b = buckets_[next_launch_];
    for (size_t i : b.params) {
      if (got_[i]) continue;
      const at::Tensor& p = params_[i];
      at::Tensor slot = b.flat.narrow(0, static_cast<int64_t>(offset_of_[i]), p.numel()).view_as(p);
      if (p.grad().defined()) {
        slot.copy_(p.grad());
      } else {
        slot.zero_();
      }
      got_[i] = true;
    }
    launch(b);
  }
  const double inv = 1.0 / pg_.world();
  for (auto& b : buckets_) {
    pg_.wait(b.handle);
    b.flat.mul_(inv);
    for (size_t i : b.params) {
      const at::Tensor& p = params_[i];
      at::Tensor mean = b.flat.narrow(0, static_cast<int64_t>(offset_of_[i]), p.numel()).view_as(p);
      if (p.grad().defined()) {
        p.grad().copy_(mean);
      } else {
        const_cast<at::Tensor&>(p).mutable_grad() = mean.clone();
      }
    }
  }
  sync_ = false;
}

}  // namespace mmref::train
