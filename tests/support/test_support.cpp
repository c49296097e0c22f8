#include "test_support.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>

#include "file_write.hpp"

namespace cohort::testing {

namespace fs = std::filesystem;

std::string bin(std::string_view program) {
  return std::string(COHORT_TEST_BIN_DIR) + "/" + std::string(program);
}

std::string source_path(std::string_view relative) {
  return std::string(COHORT_TEST_SOURCE_DIR) + "/" + std::string(relative);
}

bool is_root() {
  return geteuid() == 0;
}

std::string slurp(const fs::path& path) {
  return read_whole_file(path);
}

ScratchDir::ScratchDir(std::string_view prefix) {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  path_ = fs::temp_directory_path() /
          (std::string(prefix) + "-" + std::to_string(::getpid()) + (test ? std::string("-") + test->name() : ""));
  // Parameterized tests are named "Name/0": one directory level, not two.
  std::string name = path_.filename().string();
  for (char& c : name)
    if (c == '/') c = '_';
  path_ = path_.parent_path() / name;
  std::error_code ec;
  fs::remove_all(path_, ec);
  fs::create_directories(path_, ec);
  if (ec) ADD_FAILURE() << "cannot make the test's directory " << path_ << ": " << ec.message();
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string unique_job_id(std::string_view prefix) {
  static std::atomic<int> counter{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return std::string(prefix) + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(now % 1000000);
}

namespace {

std::vector<pid_t> all_pids() {
  std::vector<pid_t> pids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end == '\0' && pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return pids;
}

}  // namespace

std::vector<pid_t> processes_of_job(std::string_view job_id) {
  const std::string needle = "COHORT_JOB_ID=" + std::string(job_id);
  std::vector<pid_t> found;
  for (pid_t pid : all_pids()) {
    if (pid == getpid()) continue;
    std::ifstream f("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
    std::string env((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::size_t pos = 0;
    while (pos < env.size()) {
      std::size_t end = env.find('\0', pos);
      if (end == std::string::npos) end = env.size();
      if (std::string_view(env).substr(pos, end - pos) == needle) {
        // A zombie keeps its environment readable until reaped; only live ones count.
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        auto paren = s.rfind(')');
        if (paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] != 'Z') found.push_back(pid);
        break;
      }
      pos = end + 1;
    }
  }
  return found;
}

std::vector<pid_t> processes_of_job_named(std::string_view job_id, std::string_view comm) {
  std::vector<pid_t> out;
  for (pid_t pid : processes_of_job(job_id)) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(f, name);
    if (name == comm) out.push_back(pid);
  }
  return out;
}

bool wait_for_processes_named(std::string_view job_id, std::string_view comm, std::size_t count,
                              std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (processes_of_job_named(job_id, comm).size() < count) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::vector<pid_t> wait_for_no_processes_of_job(std::string_view job_id, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = processes_of_job(job_id);
    if (left.empty() || std::chrono::steady_clock::now() >= deadline) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::set<ino_t> network_namespaces() {
  std::set<ino_t> out;
  for (pid_t pid : all_pids()) {
    struct stat st {};
    if (stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &st) == 0) out.insert(st.st_ino);
  }
  return out;
}

Captured cohort_run(const std::vector<std::string>& args, std::string_view job_id, std::chrono::milliseconds timeout) {
  SpawnOptions o;
  o.argv = {bin("cohort"), "run"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.env = {{"COHORT_JOB_ID", std::string(job_id)}};
  auto r = run_captured(std::move(o), timeout);
  if (!r.ok()) {
    ADD_FAILURE() << "could not start cohort run: " << r.status().to_string();
    return {};
  }
  EXPECT_FALSE(r->timed_out) << "cohort run did not finish within " << timeout.count() << " ms\nstdout:\n"
                             << r->out << "\nstderr:\n"
                             << r->err;
  return std::move(r).value();
}

}  // namespace cohort::testing
