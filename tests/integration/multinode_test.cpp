// Multi-node jobs in containers on namespace nodes, end to end: `cohort up`, a local cluster of
// two nodes (each runner in its own network and UTS namespace), and real jobs in runc containers
// wired together by Open MPI through cohort-exec bridge (no sshd) or by torch.distributed's env://.
// Root only (namespaces and runc); every test skips with its reason elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cluster_fixture.hpp"
#include "rank_report.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

class MultiNodeTest : public ClusterFixture {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "containers and namespace nodes need root";
    if (!run_captured({.argv = {"runc", "--version"}}, seconds(10)).ok()) GTEST_SKIP() << "runc is not installed";
    ClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    create_cluster(2, 2, 600);
    ASSERT_TRUE(wait_until([&] { return idle_nodes() == 2; }, seconds(60))) << nodes().dump();
  }

  int idle_nodes() {
    int n = 0;
    for (const auto& node : nodes())
      n += node.value("state", "") == "idle";
    return n;
  }

  // A job directory with job.yaml (`yaml` after the common fields) and a code folder.
  fs::path job_dir(const std::string& name, const std::string& yaml) {
    const fs::path d = dir_ / ("job-" + name);
    fs::create_directories(d / "code");
    std::ofstream(d / "job.yaml") << "name: " << name << "\ncode: code\ncompute: cpu\n" << yaml;
    return d;
  }

  // Submits and waits; returns the job's JSON.
  json run_job(const fs::path& d, seconds timeout = seconds(120)) {
    Captured r = cohort({"job", "submit", (d / "job.yaml").string(), "--wait"}, timeout);
    const std::string id = r.out.substr(0, r.out.find('\n'));
    json job = cohort_json({"job", "show", id});
    job["logs"] = cohort({"job", "logs", id}).out;
    return job;
  }

  // Every rank report the attempt's runners kept (ATTEMPT/run/rank-N on each node).
  std::vector<RankReport> rank_reports(const std::string& job) {
    std::vector<RankReport> out;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "nodes")) {
      if (e.is_directory() && e.path().filename() == "run" && e.path().parent_path().parent_path().filename() == job) {
        auto r = read_reports(e.path());
        out.insert(out.end(), r.begin(), r.end());
      }
    }
    return out;
  }

  // No container of this state directory is left on the machine, within `bound` (the job's end
  // may be known, from a rank's report, while the other nodes still take their containers down).
  void expect_no_containers(std::chrono::milliseconds bound = seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + bound;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "nodes")) {
      if (!e.is_directory() || e.path().filename() != "runc") continue;
      std::string left;
      do {
        auto r = run_captured({.argv = {"runc", "--root", e.path().string(), "list", "-q"}}, seconds(10));
        ASSERT_TRUE(r.ok());
        left = r->out;
        if (left.empty()) break;
        std::this_thread::sleep_for(milliseconds(50));
      } while (std::chrono::steady_clock::now() < until);
      EXPECT_EQ(left, "") << "containers left in " << e.path() << " " << bound.count() << " ms after the job ended";
    }
  }
};

TEST_F(MultiNodeTest, PlainCMpiProgramRunsTwoNodesByTwoRanksInContainers) {
  const fs::path d = job_dir("mpi-c",
                             "command: ./hello\ndistribution: {type: mpi, process_count_per_instance: 2}\n"
                             "resources: {instance_count: 2}\n");
  std::ofstream(d / "code" / "hello.c") << R"C(#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size, sum = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  char host[256];
  gethostname(host, sizeof host);
  printf("rank %d of %d on %s uid %d sum %d\n", rank, size, host, (int)getuid(), sum);
  const char* topology = getenv("OMPI_MCA_hwloc_base_topo_file");
  printf("rank %d topology %s readable %d\n", rank, topology ? topology : "(unset)",
         topology && access(topology, R_OK) == 0);
  MPI_Finalize();
  return 0;
}
)C";
  auto cc = run_captured({.argv = {"mpicc", "-o", (d / "code" / "hello").string(), (d / "code" / "hello.c").string()}},
                         seconds(60));
  ASSERT_TRUE(cc.ok() && cc->status.success()) << (cc.ok() ? cc->err : cc.status().to_string());
  json job = run_job(d);
  EXPECT_EQ(job["state"], "succeeded") << job.dump(2);
  const std::string logs = job["logs"];
  std::set<std::string> hosts;
  for (int r = 0; r < 4; ++r) {
    const std::string want = "rank " + std::to_string(r) + " of 4 on ";
    const auto at = logs.find(want);
    ASSERT_NE(at, std::string::npos) << logs;
    const std::string rest = logs.substr(at + want.size());
    hosts.insert(rest.substr(0, rest.find(' ')));
    EXPECT_EQ(rest.substr(rest.find(" uid ") + 5, 12), "65534 sum 6\n") << logs;
    // Open MPI and PMIx took the node's topology from the runner's file, not from discovery.
    EXPECT_NE(logs.find("rank " + std::to_string(r) + " topology /.cohort/topology.xml readable 1"), std::string::npos)
        << logs;
  }
  EXPECT_EQ(hosts.size(), 2u) << "the ranks did not run on two distinct hosts: " << logs;
  const json& t = job["attempts"][0]["timings"];
  EXPECT_GT(t.value("container_start_s", 0.0), 0.0) << t.dump();
  expect_no_containers();
}

TEST_F(MultiNodeTest, FortranMpiProgramRunsUnmodified) {
  if (!run_captured({.argv = {"mpif90", "--version"}}, seconds(30)).ok()) GTEST_SKIP() << "mpif90 is not installed";
  const fs::path d = job_dir("mpi-f90",
                             "command: ./hello\ndistribution: {type: mpi, process_count_per_instance: 2}\n"
                             "resources: {instance_count: 2}\n");
  std::ofstream(d / "code" / "hello.f90") << R"(program hello
  use mpi
  implicit none
  integer :: rank, nprocs, total, ierr
  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nprocs, ierr)
  call MPI_Allreduce(rank + 1, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  print '(A,I0,A,I0,A,I0)', 'f90 rank ', rank, ' of ', nprocs, ' total ', total
  call MPI_Finalize(ierr)
end program hello
)";
  auto fc = run_captured(
      {.argv = {"mpif90", "-o", (d / "code" / "hello").string(), (d / "code" / "hello.f90").string()}}, seconds(120));
  ASSERT_TRUE(fc.ok() && fc->status.success()) << (fc.ok() ? fc->err : fc.status().to_string());
  json job = run_job(d);
  EXPECT_EQ(job["state"], "succeeded") << job.dump(2);
  const std::string logs = job["logs"];
  for (int r = 0; r < 4; ++r)
    EXPECT_NE(logs.find("f90 rank " + std::to_string(r) + " of 4 total 10"), std::string::npos) << logs;
}

TEST_F(MultiNodeTest, Mpi4pyProgramRunsUnmodified) {
  const fs::path d = job_dir("mpi4py",
                             "command: /usr/bin/python3 hello.py\n"
                             "distribution: {type: mpi, process_count_per_instance: 2}\n"
                             "resources: {instance_count: 2}\n");
  std::ofstream(d / "code" / "hello.py") << "from mpi4py import MPI\nimport socket\nc = MPI.COMM_WORLD\n"
                                            "s = c.allreduce(c.Get_rank() + 1)\n"
                                            "print(f'py rank {c.Get_rank()} of {c.Get_size()} sum {s} on "
                                            "{socket.gethostname()}', flush=True)\n";
  json job = run_job(d);
  EXPECT_EQ(job["state"], "succeeded") << job.dump(2);
  const std::string logs = job["logs"];
  for (int r = 0; r < 4; ++r)
    EXPECT_NE(logs.find("py rank " + std::to_string(r) + " of 4 sum 10 on "), std::string::npos) << logs;
}

TEST_F(MultiNodeTest, DigitsTrainsAsATwoNodeByTwoRankMpiJob) {
  const fs::path d = job_dir("digits",
                             "command: ./example-digits --epochs 3 --data digits.csv.gz\n"
                             "distribution: {type: mpi, process_count_per_instance: 2}\n"
                             "resources: {instance_count: 2}\n"
                             "environment_variables: {LD_LIBRARY_PATH: .}\n");
  for (const auto& f : {fs::path(bin("example-digits")),
                        fs::path(bin("example-digits")).parent_path().parent_path() / "lib" / "libcohort.so.0"}) {
    fs::copy_file(fs::canonical(f), d / "code" / f.filename());
  }
  fs::copy_file(fs::path(COHORT_SOURCE_DIR) / "examples" / "data" / "digits.csv.gz", d / "code" / "digits.csv.gz");
  json job = run_job(d, seconds(180));
  EXPECT_EQ(job["state"], "succeeded") << job.dump(2);
  EXPECT_NE(job["logs"].get<std::string>().find("test_accuracy="), std::string::npos) << job["logs"];
}

TEST_F(MultiNodeTest, PytorchDdpRunsAcrossTwoNodesWithGloo) {
  const fs::path d = job_dir("ddp",
                             "command: /usr/bin/python3 ddp.py\n"
                             "distribution: {type: pytorch, process_count_per_instance: 1}\n"
                             "resources: {instance_count: 2}\n");
  std::ofstream(d / "code" / "ddp.py") << R"(import os, socket, torch, torch.distributed as dist
dist.init_process_group("gloo")
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
rank = dist.get_rank()
loss = model(torch.ones(2, 4) * (rank + 1)).sum()
loss.backward()
g = model.module.weight.grad.clone()
t = torch.tensor([float(rank)])
dist.all_reduce(t)
print(f"ddp rank {rank} of {dist.get_world_size()} local {os.environ['LOCAL_RANK']} "
      f"node {os.environ['NODE_RANK']} sum {t.item():.0f} grad {g[0][0].item():.1f} on {socket.gethostname()}",
      flush=True)
dist.destroy_process_group()
)";
  json job = run_job(d, seconds(180));
  EXPECT_EQ(job["state"], "succeeded") << job.dump(2);
  const std::string logs = job["logs"];
  // Averaged gradients: ranks feed 1s and 2s, so each weight's gradient is (2 + 4) / 2 = 3.
  EXPECT_NE(logs.find("ddp rank 0 of 2 local 0 node 0 sum 1 grad 3.0"), std::string::npos) << logs;
  EXPECT_NE(logs.find("ddp rank 1 of 2 local 0 node 1 sum 1 grad 3.0"), std::string::npos) << logs;
}

TEST_F(MultiNodeTest, ARankThatExitsSevenFailsTheJobNamingItAndTheGangIsGoneWithinTwoSeconds) {
  const fs::path d = job_dir("exit7",
                             "command: sh fail.sh\n"
                             "distribution: {type: mpi, process_count_per_instance: 2}\n"
                             "resources: {instance_count: 2}\n");
  std::ofstream(d / "code" / "fail.sh") << "if [ \"$OMPI_COMM_WORLD_RANK\" = 3 ]; then sleep 1; exit 7; fi\n"
                                           "exec sleep 60\n";
  // A rank that Open MPI SIGKILLs writes no report: the containers' end bounds every rank's. A
  // watcher sees it as it happens (every bundle of the attempt gone: runc delete found no process
  // left), so the CLI's own time does not count.
  std::atomic<std::int64_t> gone_ns{0};
  std::thread watcher([&] {
    const auto until = std::chrono::steady_clock::now() + seconds(60);
    bool seen = false;
    while (gone_ns == 0 && std::chrono::steady_clock::now() < until) {
      bool left = false;
      for (const auto& node : fs::directory_iterator(dir_ / "nodes")) {
        std::error_code ec;
        for (const auto& job : fs::directory_iterator(node.path() / "work" / "jobs", ec)) {
          seen = seen || fs::exists(job.path() / "1" / "run" / "ready");
          left = left || fs::exists(job.path() / "1" / "bundle");
        }
      }
      if (seen && !left) {
        gone_ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  json job = run_job(d);
  watcher.join();  // the containers go within seconds of the job's end, or the watcher gives up
  expect_no_containers();
  EXPECT_EQ(job["state"], "failed") << job.dump(2);
  const json& a = job["attempts"][0];
  EXPECT_EQ(a["end_reason"], "user_error");
  const json& f = a["first_failure"];
  EXPECT_EQ(f.value("rank", -1), 3) << f.dump();
  EXPECT_EQ(f.value("exit_code", 0), 7) << f.dump();
  EXPECT_EQ(f.value("node", ""), a["nodes"][1]) << f.dump();
  EXPECT_EQ(f.value("host", ""), a["nodes"][1]) << "a namespace node's hostname is its name: " << f.dump();
  EXPECT_NE(job.value("message", "").find("rank 3"), std::string::npos) << job.dump(2);
  // Every other rank ended (stopped) within 2 s of rank 3's exit.
  const auto reports = rank_reports(job["id"]);
  std::int64_t failed_ns = 0, last_ns = 0;
  for (const auto& r : reports) {
    if (r.rank == 3) failed_ns = r.end_ns;
    last_ns = std::max(last_ns, r.end_ns);
  }
  ASSERT_GT(failed_ns, 0) << "no report of rank 3";
  EXPECT_LE(last_ns - failed_ns, 2'000'000'000)
      << "the gang took " << static_cast<double>(last_ns - failed_ns) / 1e9 << " s to stop";
  // The containers hold Open MPI's daemon too, which waits odls_base_sigkill_timeout (1 s) after
  // it signalled its ranks before it exits, whether they are gone or not: 2 s for the ranks, 3 s
  // for the last process of the attempt.
  ASSERT_GT(gone_ns.load(), 0) << "the watcher never saw the containers gone";
  EXPECT_LE(gone_ns - failed_ns, 3'000'000'000)
      << "the containers were still there " << static_cast<double>(gone_ns.load() - failed_ns) / 1e9
      << " s after rank 3 failed";
}

TEST_F(MultiNodeTest, TheJobIsNotRootAndSeesNoHostFileOutsideItsMounts) {
  std::ofstream(dir_ / "host-secret") << "secret\n";
  const fs::path out = dir_ / "outputs";
  const fs::path d = job_dir("isolation", "command: sh check.sh\noutputs: {result: {path: " + out.string() + "}}\n");
  std::ofstream(d / "code" / "check.sh") << "id -u; id -g\n"
                                            "test -e '" +
                                                (dir_ / "host-secret").string() +
                                                "' && echo SEES-HOST-FILE\n"
                                                "cat /etc/shadow >/dev/null 2>&1 && echo READS-SHADOW\n"
                                                "touch /usr/x 2>/dev/null && echo WRITES-USR\n"
                                                "touch check.sh 2>/dev/null && echo WRITES-CODE\n"
                                                "echo done > \"$COHORT_OUTPUT_RESULT/r.txt\" && echo wrote output\n"
                                                "grep -c CapEff:.0000000000000000 /proc/self/status\n";
  json job = run_job(d);
  EXPECT_EQ(job["state"], "succeeded") << job.dump(2);
  const std::string logs = job["logs"];
  EXPECT_NE(logs.find("65534\n65534\n"), std::string::npos) << logs;
  for (const char* bad : {"SEES-HOST-FILE", "READS-SHADOW", "WRITES-USR", "WRITES-CODE"})
    EXPECT_EQ(logs.find(bad), std::string::npos) << logs;
  EXPECT_NE(logs.find("wrote output\n1\n"), std::string::npos) << logs;
  std::ifstream r(out / "r.txt");
  std::string word;
  r >> word;
  EXPECT_EQ(word, "done");
}

}  // namespace
}  // namespace cohort::testing
