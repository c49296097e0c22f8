// Every timeout and interval of the cluster's control plane, in one place.
//
// Each knob has a default with the reason for it. All of them are multiplied by one factor,
// COHORT_TIME_SCALE (default 1), so tests run fault scenarios in a fraction of the real time; a
// single knob can be set on its own with COHORT_<NAME>_MS (e.g. COHORT_HEARTBEAT_TIMEOUT_MS=3000),
// which is not scaled.
#pragma once

#include <chrono>
#include <string_view>

namespace cohort::config {

struct Knob {
  std::string_view name;  // lower_snake_case; the variable is COHORT_ + upper case + _MS
  std::chrono::milliseconds base;
  std::string_view why;
};

using namespace std::chrono_literals;

inline constexpr Knob kHeartbeatInterval{
    "heartbeat_interval", 1000ms,
    "one heartbeat a second keeps lost-node detection near 5 s at a cost of ~1 small RPC/s/node"};
inline constexpr Knob kHeartbeatTimeout{
    "heartbeat_timeout", 5000ms,
    "five missed heartbeats: long enough that a node whose cores are saturated by its own job is "
    "not called lost, short enough to beat Kubernetes' 40 s and Slurm's 300 s by far"};
inline constexpr Knob kHeartbeatDeadline{"heartbeat_deadline", 3000ms,
                                         "a heartbeat RPC stuck longer than this is retried on the next tick"};
inline constexpr Knob kCallDeadline{"call_deadline", 30000ms,
                                    "CLI calls: the manager answers in milliseconds; 30 s survives a loaded machine"};
inline constexpr Knob kRegisterRetry{"register_retry", 1000ms,
                                     "a runner whose manager is away retries registering this often"};
inline constexpr Knob kSchedulerTick{"scheduler_tick", 200ms,
                                     "queue, gang allocation and autoscaling run this often (and on every change)"};
inline constexpr Knob kStopGrace{"stop_grace", 5000ms,
                                 "SIGTERM to SIGKILL for a job's processes: time to flush logs and exit cleanly"};
inline constexpr Knob kProvisioningTimeout{
    "provisioning_timeout", 120000ms,
    "a created node that never registers within this is removed and the decision logged"};
inline constexpr Knob kManagerStart{"manager_start", 30000ms,
                                    "`cohort up` waits this long for the manager it started to answer"};
inline constexpr Knob kPeerReady{
    "peer_ready", 120000ms,
    "a job's container must be up within this (it may be unpacking an image), and an MPI head waits "
    "this long for every other node's before it fails the attempt naming the node"};
inline constexpr Knob kScheduledEventsPoll{
    "scheduled_events_poll", 1000ms,
    "a cloud gives a Preempt event 30 s ahead (Azure, GCP): polling its metadata endpoint each second "
    "spends at most 1 s of that notice; the endpoint is link-local and cheap. Capped at 5 s"};
inline constexpr Knob kLogFlush{"log_flush", 500ms, "a runner ships new log bytes of its jobs this often"};

// COHORT_TIME_SCALE, read once; non-positive or unparsable values are ignored (factor 1).
double time_scale();
// The knob's value: COHORT_<NAME>_MS when set, else base × time_scale().
std::chrono::milliseconds get(const Knob& knob);

}  // namespace cohort::config
