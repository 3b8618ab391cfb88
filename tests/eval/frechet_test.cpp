// FID statistics, Fréchet distance, the scipy-sqrtm replay, KID and Inception Score.
// Hand-computed cases first (tables below), then cross-checks against numpy/scipy run through Debian's
// /usr/bin/python3 (skipped when numpy or scipy is missing). The Python side re-states the reference
// formulas (pytorch-fid calculate_frechet_distance, torch-fidelity kid/isc) in a few lines each.
//   build/<dir>/tests/mmref_eval_tests --gtest_filter='Frechet*:Kid*:InceptionScore*'
//
// Hand-computed cases
//   stats     X = [[1,2],[3,4],[5,0],[7,2]]          mu = [4, 2], sigma = [[20/3, -4/3], [-4/3, 8/3]]
//   FID 1-D   mu 0 vs 3, var 4 vs 1                  9 + 4 + 1 - 2*sqrt(4)               = 10
//   FID diag  mu (0,0) vs (1,2), diag(1,4), diag(4,9)  5 + 5 + 13 - 2*(2 + 6)            = 7
//   rotated   the same covariances turned by 30 deg  (commuting, same spectra)           = 7
//   disjoint  diag(1,0) vs diag(0,1), same mu        0 + 1 + 1 - 2*tr(sqrtm(0))          = 2
//   KID       x = {0, 1}, y = {1, 2}, d = 1, (xy+1)^3: offdiag Kxx 2, Kyy 54, Kxy 37;
//             m = 2: (2 + 54)/2 - 2*37/4                                                 = 9.5
//   IS        logits all equal                                                           = 1
//             2 splits: 10 one-hot rows over 5 classes (2 each) | 10 over 10 classes     = 5 | 10
//             p = [1,0] and [.5,.5]: q = [.75,.25], mean KL = .75 log(4/3)               = (4/3)^.75
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "core/error.h"
#include "core/fs.h"
#include "eval/frechet.h"
#include "eval/npy.h"

namespace mmref::eval {
namespace {

namespace stdfs = std::filesystem;

bool have_scipy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy, scipy.linalg' >/dev/null 2>&1") == 0;
  return ok;
}

class PyDir : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::make_temp_dir("mmref_frechet_test_"); }
  void TearDown() override {
    std::error_code ec;
    stdfs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  int python(const std::string& script) const {
    std::ofstream(path("script.py")) << "import numpy as np, sys\n" << script;
    const std::string cmd = "cd '" + dir_ + "' && /usr/bin/python3 script.py >py.log 2>&1";
    const int rc = std::system(cmd.c_str());
    if (rc != 0) ADD_FAILURE() << "python failed:\n" << fs::read_file(path("py.log"));
    return rc;
  }
  std::string dir_;
};

at::Tensor mat(std::initializer_list<std::initializer_list<double>> rows) {
  std::vector<double> v;
  int64_t r = 0, c = 0;
  for (const auto& row : rows) {
    c = static_cast<int64_t>(row.size());
    v.insert(v.end(), row.begin(), row.end());
    ++r;
  }
  return at::tensor(v, at::kDouble).reshape({r, c});
}
at::Tensor vec(std::initializer_list<double> v) { return at::tensor(std::vector<double>(v), at::kDouble); }

// ---- statistics ----

TEST(FrechetStats, HandComputedMeanAndCovariance) {
  const FeatureStats st = compute_feature_stats(mat({{1, 2}, {3, 4}, {5, 0}, {7, 2}}).to(at::kFloat));
  EXPECT_EQ(st.n, 4);
  EXPECT_TRUE(st.warning.empty()) << st.warning;
  EXPECT_EQ(st.mu.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::allclose(st.mu, vec({4, 2}), 0, 1e-15));
  EXPECT_TRUE(at::allclose(st.sigma, mat({{20.0 / 3, -4.0 / 3}, {-4.0 / 3, 8.0 / 3}}), 0, 1e-14));
  EXPECT_TRUE(at::equal(st.sigma, st.sigma.t()));
}

TEST(FrechetStats, WarnsForTooFewRowsWithoutThrowing) {
  const FeatureStats one = compute_feature_stats(at::ones({1, 3}));
  EXPECT_NE(one.warning.find("N >= 2"), std::string::npos) << one.warning;
  EXPECT_TRUE(at::isnan(one.sigma).all().item<bool>());
  const FeatureStats few = compute_feature_stats(at::randn({3, 5}));
  EXPECT_NE(few.warning.find("singular"), std::string::npos) << few.warning;
  EXPECT_TRUE(at::isfinite(few.sigma).all().item<bool>());
  EXPECT_TRUE(compute_feature_stats(at::randn({6, 5})).warning.empty());
  // A NaN sigma is refused by the distance, with the reason.
  try {
    frechet_distance(one, one);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sigma1"), std::string::npos) << e.what();
  }
}

TEST(FrechetStats, RejectsNonFiniteAndMisshapenFeatures) {
  at::Tensor x = at::randn({5, 4});
  x[3][2] = std::nan("");
  try {
    compute_feature_stats(x, "gen features");
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("gen features"), std::string::npos) << m;
    EXPECT_NE(m.find("row 3, column 2"), std::string::npos) << m;
  }
  x[3][2] = INFINITY;
  EXPECT_THROW(compute_feature_stats(x), Error);
  EXPECT_THROW(compute_feature_stats(at::randn({5})), Error);
  EXPECT_THROW(compute_feature_stats(at::ones({5, 3}, at::kLong)), Error);
}

class FrechetStatsFile : public PyDir {};

TEST_F(FrechetStatsFile, SaveLoadRoundTripAndPytorchFidLayout) {
  const FeatureStats st = compute_feature_stats(at::randn({50, 8}, at::kDouble));
  save_feature_stats(path("stats.npz"), st);
  const FeatureStats back = load_feature_stats(path("stats.npz"));
  EXPECT_TRUE(at::equal(back.mu, st.mu));
  EXPECT_TRUE(at::equal(back.sigma, st.sigma));
  EXPECT_EQ(back.n, 50);
  // A pytorch-fid file (np.savez_compressed(mu=, sigma=), float32 here) loads; n is unknown.
  save_npz(path("f32.npz"), {{"mu", st.mu.to(at::kFloat)}, {"sigma", st.sigma.to(at::kFloat)}});
  const FeatureStats f32 = load_feature_stats(path("f32.npz"));
  EXPECT_EQ(f32.n, -1);
  EXPECT_EQ(f32.sigma.scalar_type(), at::kDouble);
  save_npz(path("bad.npz"), {{"mu", st.mu}, {"sigma", st.sigma.narrow(0, 0, 4)}});
  try {
    load_feature_stats(path("bad.npz"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path("bad.npz")), std::string::npos) << e.what();
  }
  save_npz(path("nomu.npz"), {{"m", st.mu}});
  EXPECT_THROW(load_feature_stats(path("nomu.npz")), Error);
  if (!have_scipy()) return;
  ASSERT_EQ(python(R"(
with np.load('stats.npz') as f:          # what pytorch-fid's _compute_statistics_of_path does
    m, s = f['mu'][:], f['sigma'][:]
assert m.dtype == np.float64 and m.shape == (8,) and s.shape == (8, 8)
)"),
            0);
}

TEST_F(FrechetStatsFile, Hdf5RoundTripAndH5pyFiles) {
  const FeatureStats st = compute_feature_stats(at::randn({40, 6}, at::kDouble));
  save_feature_stats(path("stats.h5"), st);
  EXPECT_FALSE(stdfs::exists(path("stats.h5.tmp")));
  const FeatureStats back = load_feature_stats(path("stats.h5"));
  EXPECT_TRUE(at::equal(back.mu, st.mu));
  EXPECT_TRUE(at::equal(back.sigma, st.sigma));
  EXPECT_EQ(back.n, 40);
  // The same Fréchet distance from either file format.
  save_feature_stats(path("stats.npz"), st);
  const FeatureStats other = compute_feature_stats(at::randn({40, 6}, at::kDouble) + 0.5);
  EXPECT_EQ(frechet_distance(load_feature_stats(path("stats.npz")), other).value,
            frechet_distance(back, other).value);

  // Files written by h5py: float32 in a group with n as an attribute; float64 at the root.
  ASSERT_EQ(python(R"(
import h5py
with h5py.File('stats.h5') as f:               # what we wrote reads back in h5py
    assert f['mu'].dtype == np.float64 and f['sigma'].shape == (6, 6) and int(f['n'][()]) == 40
    mu, sigma = f['mu'][:], f['sigma'][:]
with h5py.File('py.hdf5', 'w') as f:
    g = f.create_group('cifar10/train')
    g['mu'] = mu.astype(np.float32); g['sigma'] = sigma.astype(np.float32); g.attrs['n'] = 50000
    f['mu'] = mu + 1; f['sigma'] = sigma
with h5py.File('nosigma.h5', 'w') as f:
    f['mu'] = mu
with h5py.File('badshape.h5', 'w') as f:
    f['mu'] = mu; f['sigma'] = sigma[:4]
with h5py.File('intmu.h5', 'w') as f:
    f['mu'] = np.arange(6); f['sigma'] = sigma
)"),
            0);
  const FeatureStats grp = load_feature_stats(path("py.hdf5") + ":/cifar10/train");
  EXPECT_EQ(grp.n, 50000);
  EXPECT_EQ(grp.mu.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::allclose(grp.mu, st.mu, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(grp.sigma, st.sigma, 1e-6, 1e-6));
  const FeatureStats root = load_feature_stats(path("py.hdf5"));
  EXPECT_EQ(root.n, -1);
  EXPECT_TRUE(at::allclose(root.mu, st.mu + 1));

  auto expect_error = [&](const std::string& p, const std::string& needle) {
    try {
      load_feature_stats(p);
      ADD_FAILURE() << "no error for " << p;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(path("nosigma.h5"), "no 'sigma' dataset");
  expect_error(path("badshape.h5"), "expected mu (d) and sigma (d, d)");
  expect_error(path("intmu.h5"), "not floating point");
  expect_error(path("missing.h5"), "do not exist");
  expect_error(path("py.hdf5") + ":/nope", "no group '/nope'");
  std::ofstream(path("garbage.h5")) << "not hdf5 at all";
  expect_error(path("garbage.h5"), "not an HDF5 file");
}

// ---- Fréchet distance ----

TEST(FrechetDistance, HandComputedCases) {
  EXPECT_NEAR(frechet_distance(vec({0}), mat({{4}}), vec({3}), mat({{1}})).value, 10, 1e-12);
  const at::Tensor s1 = mat({{1, 0}, {0, 4}}), s2 = mat({{4, 0}, {0, 9}});
  FrechetResult r = frechet_distance(vec({0, 0}), s1, vec({1, 2}), s2);
  EXPECT_NEAR(r.value, 7, 1e-12);
  EXPECT_NEAR(r.mean_term, 5, 1e-15);
  EXPECT_NEAR(r.tr_covmean, 8, 1e-12);
  EXPECT_FALSE(r.eps_path);
  EXPECT_EQ(r.path, "direct");
  const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
  const at::Tensor rot = mat({{c, -s}, {s, c}});
  r = frechet_distance(vec({0, 0}), rot.mm(s1).mm(rot.t()), vec({1, 2}), rot.mm(s2).mm(rot.t()));
  EXPECT_NEAR(r.value, 7, 1e-12);
  // Same statistics: 0 up to round-off.
  const FeatureStats st = compute_feature_stats(at::randn({200, 16}));
  EXPECT_NEAR(frechet_distance(st, st).value, 0, 1e-10);
  // Disjoint singular covariances: s1 s2 = 0, whose square root scipy finds (no eps path).
  r = frechet_distance(vec({0, 0}), mat({{1, 0}, {0, 0}}), vec({0, 0}), mat({{0, 0}, {0, 1}}));
  EXPECT_NEAR(r.value, 2, 1e-12);
  EXPECT_FALSE(r.eps_path) << r.reason;
}

TEST(FrechetDistance, RejectsBadInput) {
  const at::Tensor m = at::zeros({3}, at::kDouble), s = at::eye(3, at::kDouble);
  EXPECT_THROW(frechet_distance(m, s, at::zeros({4}, at::kDouble), at::eye(4, at::kDouble)), Error);
  EXPECT_THROW(frechet_distance(m, at::eye(4, at::kDouble), m, s), Error);
  EXPECT_THROW(frechet_distance(m, s.narrow(0, 0, 2), m, s), Error);
  at::Tensor bad = s.clone();
  bad[1][1] = NAN;
  try {
    frechet_distance(m, s, m, bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sigma2"), std::string::npos) << e.what();
  }
}

// ---- the scipy.linalg.sqrtm replay ----

TEST(FrechetSqrtmReplay, HandCases) {
  // Nilpotent: T = A, R = 0, pair (0,1): denom 0, numerator 1 -> scipy fails.
  EXPECT_TRUE(scipy_sqrtm_check(mat({{0, 1}, {0, 0}})).fails);
  EXPECT_TRUE(scipy_sqrtm_check(mat({{0, 1, 2}, {0, 0, 3}, {0, 0, 0}})).fails);
  // Zero pivots with zero numerators, or no zero pivots at all.
  EXPECT_FALSE(scipy_sqrtm_check(at::zeros({4, 4}, at::kDouble)).fails);
  EXPECT_FALSE(scipy_sqrtm_check(mat({{0, 0, 0}, {0, 1, 0}, {0, 0, 0}})).fails);
  EXPECT_FALSE(scipy_sqrtm_check(mat({{4, 1}, {0, 9}})).fails);
  const SqrtmCheck dense = scipy_sqrtm_check(at::rand({50, 50}, at::kDouble));
  EXPECT_FALSE(dense.fails);
  EXPECT_EQ(dense.isolated_zeros, 0);
  // n = 130: scipy's blocks are [0,65) and [65,130); a coupling between zero pivots in different blocks
  // goes through LAPACK trsyl, which does not fail.
  at::Tensor a = at::eye(130, at::kDouble);
  a[0][0] = 0, a[129][129] = 0, a[0][129] = 1;
  EXPECT_FALSE(scipy_sqrtm_check(a).fails) << scipy_sqrtm_check(a).reason;
  a[1][1] = 0, a[1][3] = 1, a[0][1] = 1;
  EXPECT_TRUE(scipy_sqrtm_check(a).fails);
}

class FrechetScipy : public PyDir {};

// Matrices s1 @ s2 from tiny feature sets with dead (all-zero) columns, where scipy's sqrtm fails by
// round-off or not; plus the hand cases. Both sides see the same bits of A.
TEST_F(FrechetScipy, AgreesWithScipyOnDeadFeatureProducts) {
  if (!have_scipy()) GTEST_SKIP() << "no /usr/bin/python3 with scipy";
  at::manual_seed(7);
  std::map<std::string, at::Tensor> cases;
  const int kCases = 1500;
  for (int t = 0; t < kCases; ++t) {
    const int64_t n = 2 + t % 6, d = 2 + (t / 6) % 7;
    at::Tensor f1 = at::rand({n, d}, at::kDouble), f2 = at::rand({n, d}, at::kDouble);
    f1.mul_(at::rand({d}, at::kDouble).gt(0.4));
    f2.mul_(at::rand({d}, at::kDouble).gt(0.4));
    const auto s1 = compute_feature_stats(f1).sigma, s2 = compute_feature_stats(f2).sigma;
    cases[fmt::format("c{:05d}", t)] = s1.mm(s2);
  }
  cases["h0"] = mat({{0, 1}, {0, 0}});
  at::Tensor a = at::eye(130, at::kDouble);
  a[0][0] = 0, a[129][129] = 0, a[0][129] = 1;
  cases["h1"] = a.clone();
  a[1][1] = 0, a[1][3] = 1, a[0][1] = 1;
  cases["h2"] = a;
  at::Tensor b = at::rand({100, 100}, at::kDouble);  // zero pivots on both sides of a small middle block
  b.narrow(0, 0, 2).zero_();
  b.narrow(1, 98, 2).zero_();
  cases["h3"] = b;
  save_npz(path("cases.npz"), cases);
  ASSERT_EQ(python(R"(
import warnings
from scipy import linalg
warnings.simplefilter('ignore')
out = {}
with np.load('cases.npz') as f:
    for k in f.files:
        X, _ = linalg.sqrtm(f[k], disp=False)
        out[k] = np.array(not np.isfinite(X).all())
np.savez('fails.npz', **out)
)"),
            0);
  const auto scipy = load_npz(path("fails.npz"));
  int agree = 0, fails = 0;
  std::string mismatches;
  for (const auto& [k, m] : cases) {
    const bool want = scipy.at(k).item<bool>();
    const SqrtmCheck got = scipy_sqrtm_check(m);
    fails += want;
    if (got.fails == want) {
      ++agree;
    } else if (k[0] == 'h') {
      ADD_FAILURE() << k << ": scipy fails=" << want << ", ours: " << got.reason;
    } else if (mismatches.size() < 400) {
      mismatches += k + " ";
    }
  }
  const double rate = static_cast<double>(agree) / static_cast<double>(cases.size());
  // Where the exact-arithmetic numerator is 0 (always so for s1 @ s2: products of two PSD matrices
  // are diagonalisable), scipy's outcome is decided by the last bit of round-off in LAPACK's Schur
  // vectors, which no reimplementation reproduces bit for bit; measured agreement is ~99%.
  EXPECT_GE(rate, 0.97) << "agree " << agree << "/" << cases.size() << " (scipy failed on " << fails
                        << "); mismatches: " << mismatches;
  EXPECT_GT(fails, 100);  // the set exercises both outcomes
  std::cout << "[ scipy sqrtm replay ] agrees on " << agree << "/" << cases.size()
            << " matrices (scipy failed on " << fails << ")\n";
}

// pytorch-fid's calculate_frechet_distance (scipy sqrtm, eps retry, .real) on statistics we computed
// and saved: full-rank, rank-deficient (N < d) and dead-feature cases.
TEST_F(FrechetScipy, FrechetMatchesPytorchFidFormula) {
  if (!have_scipy()) GTEST_SKIP() << "no /usr/bin/python3 with scipy";
  at::manual_seed(11);
  struct Case {
    int64_t n, d;
    bool dead;
  };
  std::vector<Case> cs = {{200, 16, false}, {500, 64, false}, {30, 64, false}, {10, 40, false}};
  for (int i = 0; i < 60; ++i) cs.push_back({4 + i % 4, 5 + i % 3, true});
  std::vector<FrechetResult> ours;
  for (size_t i = 0; i < cs.size(); ++i) {
    at::Tensor f1 = at::rand({cs[i].n, cs[i].d}, at::kDouble).relu();
    at::Tensor f2 = at::rand({cs[i].n, cs[i].d}, at::kDouble).mul(1.3).add(0.1);
    if (cs[i].dead) {
      f1.mul_(at::rand({cs[i].d}, at::kDouble).gt(0.4));
      f2.mul_(at::rand({cs[i].d}, at::kDouble).gt(0.4));
    }
    const FeatureStats a = compute_feature_stats(f1), b = compute_feature_stats(f2);
    save_feature_stats(path(fmt::format("a{}.npz", i)), a);
    save_feature_stats(path(fmt::format("b{}.npz", i)), b);
    ours.push_back(frechet_distance(a, b));
  }
  ASSERT_EQ(python(fmt::format(R"(
import warnings
from scipy import linalg
warnings.simplefilter('ignore')
def fid(mu1, sigma1, mu2, sigma2, eps=1e-6):   # pytorch-fid 0.3.0 calculate_frechet_distance
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    eps_path = not np.isfinite(covmean).all()
    if eps_path:
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean), eps_path
vals, paths = [], []
for i in range({}):
    a, b = np.load('a%d.npz' % i), np.load('b%d.npz' % i)
    v, p = fid(a['mu'], a['sigma'], b['mu'], b['sigma'])
    vals.append(v); paths.append(p)
np.savez('fid.npz', value=np.array(vals), eps_path=np.array(paths))
)",
                               cs.size())),
            0);
  const auto ref = load_npz(path("fid.npz"));
  int path_agree = 0, eps_cases = 0;
  for (size_t i = 0; i < cs.size(); ++i) {
    const double want = ref.at("value")[static_cast<int64_t>(i)].item<double>();
    const bool want_eps = ref.at("eps_path")[static_cast<int64_t>(i)].item<bool>();
    eps_cases += want_eps;
    path_agree += ours[i].eps_path == want_eps;
    SCOPED_TRACE(fmt::format("case {} (N={}, d={}, dead={}): ours {} ({}), pytorch-fid {} ({})", i, cs[i].n,
                             cs[i].d, cs[i].dead, ours[i].value, ours[i].path, want,
                             want_eps ? "eps" : "direct"));
    if (ours[i].eps_path == want_eps) {
      EXPECT_NEAR(ours[i].value, want, 1e-8 + 1e-6 * std::abs(want));
    } else {
      EXPECT_NEAR(ours[i].value, want, 5e-3 * std::abs(want) + 1e-5);  // the eps shift only
    }
  }
  EXPECT_GE(path_agree, static_cast<int>(cs.size()) - 3)
      << "eps path agreed on " << path_agree << "/" << cs.size();
  EXPECT_GT(eps_cases, 5);
  std::cout << "[ pytorch-fid formula ] eps path agreed on " << path_agree << "/" << cs.size()
            << " cases (pytorch-fid took it on " << eps_cases << ")\n";
}

// ---- KID ----

TEST(Kid, HandComputed) {
  KidOptions o;
  o.subsets = 1;
  const KidResult r = kernel_inception_distance(mat({{0}, {1}}), mat({{1}, {2}}), o);
  EXPECT_EQ(r.subset_size, 2);
  ASSERT_EQ(r.values.size(), 1u);
  EXPECT_NEAR(r.mean, 9.5, 1e-13);
  EXPECT_EQ(r.std, 0);
}

TEST(Kid, MatchesBruteForceAndRejectsBadInput) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({37, 6}, at::kDouble), y = at::randn({37, 6}, at::kDouble).add(0.3);
  auto k = [](const at::Tensor& a, const at::Tensor& b) { return (a.mm(b.t()) / 6 + 1).pow(3); };
  const double m = 37;
  const double want =
      ((k(x, x).sum() - k(x, x).trace()) + (k(y, y).sum() - k(y, y).trace())).item<double>() / (m * (m - 1)) -
      2 * k(x, y).sum().item<double>() / (m * m);
  KidOptions o;
  o.subsets = 3;  // subset_size 1000 clamps to 37: the whole sets, in order, three times
  const KidResult r = kernel_inception_distance(x, y, o);
  EXPECT_NEAR(r.mean, want, 1e-12 * std::abs(want));
  EXPECT_NEAR(r.std, 0, 1e-15);
  EXPECT_THROW(kernel_inception_distance(x, y.narrow(1, 0, 5)), Error);
  EXPECT_THROW(kernel_inception_distance(x.narrow(0, 0, 1), y), Error);
  o.subsets = 0;
  EXPECT_THROW(kernel_inception_distance(x, y, o), ConfigError);
}

class KidPy : public PyDir {};

TEST_F(KidPy, MatchesTorchFidelitySubsetDraws) {
  if (!have_scipy()) GTEST_SKIP() << "no /usr/bin/python3 with numpy";
  at::manual_seed(5);
  const at::Tensor x = at::rand({100, 12}, at::kDouble), y = at::rand({80, 12}, at::kDouble).pow(2);
  save_npz(path("f.npz"), {{"x", x}, {"y", y}});
  KidOptions o;
  o.subsets = 7;
  o.subset_size = 40;
  const KidResult r = kernel_inception_distance(x, y, o);
  ASSERT_EQ(python(R"(
# torch-fidelity 0.4.0 kid_features_to_metric with float64 features
f = np.load('f.npz'); f1, f2 = f['x'], f['y']
def k(a, b): return (a @ b.T / a.shape[1] + 1) ** 3
def mmd2(kxx, kxy, kyy):
    m = kxx.shape[0]
    return ((kxx.sum(1) - np.diag(kxx)).sum() + (kyy.sum(1) - np.diag(kyy)).sum()) / (m * (m - 1)) \
        - 2 * kxy.sum(0).sum() / (m * m)
rng = np.random.RandomState(2020)
mmds = []
for i in range(7):
    a = f1[rng.choice(len(f1), 40, replace=False)]
    b = f2[rng.choice(len(f2), 40, replace=False)]
    mmds.append(mmd2(k(a, a), k(a, b), k(b, b)))
np.save('kid.npy', np.array([np.mean(mmds), np.std(mmds)] + mmds))
)"),
            0);
  const at::Tensor want = load_npy(path("kid.npy"));
  EXPECT_NEAR(r.mean, want[0].item<double>(), 1e-12 * std::abs(want[0].item<double>()));
  EXPECT_NEAR(r.std, want[1].item<double>(), 1e-10 * std::abs(want[1].item<double>()));
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(r.values[i], want[2 + i].item<double>(), 1e-12) << i;
}

TEST_F(KidPy, NumpyRngPermutationsMatchNumpy) {
  if (!have_scipy()) GTEST_SKIP() << "no /usr/bin/python3 with numpy";
  ASSERT_EQ(python(R"(
out = {}
for seed in [0, 1, 2020, 4294967295]:
    for n in [1, 2, 3, 10, 1000, 70000]:
        out['s%d_n%d' % (seed, n)] = np.random.RandomState(seed).permutation(n)
np.savez('perm.npz', **out)
)"),
            0);
  for (const auto& [k, want] : load_npz(path("perm.npz"))) {
    const auto u = k.find('_');
    const auto seed = static_cast<uint32_t>(std::stoul(k.substr(1, u - 1)));
    const int64_t n = std::stoll(k.substr(u + 2));
    const auto got = numpy_legacy_permutation(n, seed);
    ASSERT_EQ(static_cast<int64_t>(got.size()), want.numel()) << k;
    EXPECT_TRUE(at::equal(at::tensor(got, at::kLong), want.to(at::kLong))) << k;
  }
}

// ---- Inception Score ----

TEST(InceptionScore, HandComputedCases) {
  const InceptionScoreResult u = inception_score(at::zeros({50, 7}));
  ASSERT_EQ(u.per_split.size(), 10u);
  EXPECT_NEAR(u.mean, 1, 1e-15);
  EXPECT_NEAR(u.std, 0, 1e-15);

  at::Tensor logits = at::zeros({20, 10}, at::kDouble);
  for (int64_t i = 0; i < 10; ++i) logits[i][i / 2] = 1000;    // split 0: classes 0..4, twice each
  for (int64_t i = 10; i < 20; ++i) logits[i][i - 10] = 1000;  // split 1: classes 0..9
  const InceptionScoreResult oh = inception_score(logits, /*splits=*/2, /*shuffle=*/false);
  EXPECT_NEAR(oh.per_split[0], 5, 1e-12);
  EXPECT_NEAR(oh.per_split[1], 10, 1e-12);
  EXPECT_NEAR(oh.mean, 7.5, 1e-12);
  EXPECT_NEAR(oh.std, 2.5, 1e-12);

  const InceptionScoreResult two = inception_score(mat({{1000, 0}, {0, 0}}), /*splits=*/1, /*shuffle=*/false);
  EXPECT_NEAR(two.mean, std::pow(4.0 / 3.0, 0.75), 1e-14);

  EXPECT_THROW(inception_score(at::zeros({5, 3}), 10), Error);
  EXPECT_THROW(inception_score(at::zeros({5, 3}), 0), ConfigError);
}

class InceptionScorePy : public PyDir {};

TEST_F(InceptionScorePy, MatchesTorchFidelityWithShuffle) {
  if (!have_scipy()) GTEST_SKIP() << "no /usr/bin/python3 with numpy";
  at::manual_seed(9);
  const at::Tensor logits = at::randn({103, 17}, at::kDouble).mul(3);
  save_npy(path("logits.npy"), logits);
  const InceptionScoreResult r = inception_score(logits.to(at::kFloat));
  ASSERT_EQ(python(R"(
# torch-fidelity 0.4.0 isc_features_to_metric (splits=10, shuffle=True, rng_seed=2020), in numpy
x = np.load('logits.npy').astype(np.float32).astype(np.float64)
N = len(x)
x = x[np.random.RandomState(2020).permutation(N)]
lp = x - x.max(1, keepdims=True); lp = lp - np.log(np.exp(lp).sum(1, keepdims=True)); p = np.exp(lp)
scores = []
for i in range(10):
    pc, lpc = p[i * N // 10:(i + 1) * N // 10], lp[i * N // 10:(i + 1) * N // 10]
    scores.append(np.exp((pc * (lpc - np.log(pc.mean(0, keepdims=True)))).sum(1).mean()))
np.save('is.npy', np.array([np.mean(scores), np.std(scores)]))
)"),
            0);
  const at::Tensor want = load_npy(path("is.npy"));
  EXPECT_NEAR(r.mean, want[0].item<double>(), 1e-12 * want[0].item<double>());
  EXPECT_NEAR(r.std, want[1].item<double>(), 1e-10 * want[1].item<double>() + 1e-14);
}

}  // namespace
}  // namespace mmref::eval
